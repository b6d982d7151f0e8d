"""Requests Brisa makes on a user's behalf (callbacks), to vetted addresses only: the host is
resolved here, every address it resolves to is checked by app/domain/egress.py, and the
connection goes to the checked address (a DNS answer cannot change between the check and
the connection); redirects are never followed."""

import http.client
import ipaddress
import socket
import ssl

from app.domain.egress import Allow, Refused, Target, parse, refusal


def resolve(target: Target, allow: Allow) -> str:
    """The address to connect to: the host's first, after checking every address it resolves
    to (a name with one private address among public ones is refused). Refused or OSError."""
    infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if target.host not in allow.hosts:
        for address in addresses:
            if reason := refusal(address, allow):
                raise Refused(f"refused: {target.host} resolves to {reason}")
    return str(addresses[0])


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, address: str, host: str, port: int, timeout: float):
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, address: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


def post(url: str, body: bytes, headers: dict, timeout: float, allow: Allow) -> int:
    """POST ``body`` to ``url`` on the vetted address, never following a redirect; returns
    the status (a 3xx is an answer like any other). Refused, or OSError on the network."""
    target = parse(url)
    address = resolve(target, allow)
    if target.scheme == "https":
        connection: http.client.HTTPConnection = _PinnedHTTPS(
            address, target.host, target.port, timeout
        )
    else:
        connection = _PinnedHTTP(address, target.host, target.port, timeout=timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)  # enough to end the exchange; the body is not used
        return response.status
    finally:
        connection.close()
