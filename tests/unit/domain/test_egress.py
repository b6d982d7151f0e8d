"""Where callbacks may go (#16.1): public addresses only, unless allowed; every kind of
address SSRF reaches for is refused, IPv4-mapped IPv6 included; bad URLs are refused with
the reason, never a 500."""

import ipaddress
import re

import pytest

from app.domain import egress

NOTHING = egress.Allow()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # the issue's [::ffff:127.0.0.1]
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00:ec2::254", "private"),  # AWS's IPv6 metadata service
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not a public"),  # shared address space (carrier NAT)
        ("240.0.0.1", "reserved"),
    ],
)
def test_every_address_that_is_not_public_is_refused_with_its_kind(address, kind):
    reason = egress.refusal(ipaddress.ip_address(address), NOTHING)
    assert reason is not None and kind in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert egress.refusal(ipaddress.ip_address(address), NOTHING) is None


def test_an_admin_allows_hosts_and_networks():
    allow = egress.Allow.parse(" hooks.internal, 10.0.0.0/8 ,127.0.0.1")
    assert allow.hosts == {"hooks.internal"}
    assert egress.refusal(ipaddress.ip_address("10.9.9.9"), allow) is None
    assert egress.refusal(ipaddress.ip_address("127.0.0.1"), allow) is None
    assert egress.refusal(ipaddress.ip_address("127.0.0.2"), allow) is not None
    assert egress.check_literal("http://hooks.internal/x", allow).host == "hooks.internal"
    with pytest.raises(ValueError, match="not a host name or network"):
        egress.Allow.parse("10.0.0.0/8, not a host!")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8799/cb", "loopback"),
        ("http://localhost:8799/cb", "loopback name"),
        ("http://api.localhost/cb", "loopback name"),
        ("http://[::ffff:127.0.0.1]/cb", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1", "not a valid URL"),  # was a 500: Invalid IPv6 URL
        ("http://example.com:99999/", "not a valid URL"),
        ("ftp://example.com/", "http(s)"),
        ("http:///path", "no host"),
        ("https://user:pw@example.com/", "credentials"),
    ],
)
def test_a_bad_literal_url_is_refused_with_the_reason(url, reason):
    with pytest.raises(egress.Refused, match=re.escape(reason)):
        egress.check_literal(url, NOTHING)


def test_a_name_is_left_to_the_check_after_dns():
    target = egress.check_literal("https://hooks.example.com:8443/a?b=1", NOTHING)
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        8443,
        "/a?b=1",
    )
