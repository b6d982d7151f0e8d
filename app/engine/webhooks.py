"""Webhook signatures: GitHub's and Standard Webhooks', verified and made.

A DAG's secret is one string, ``whsec_<base64 of 32 random bytes>``, used as each sender
uses it: GitHub signs with the whole string as the HMAC key; Standard Webhooks senders sign
with the base64-decoded bytes after ``whsec_``. Every comparison is constant-time.
"""

import base64
import hashlib
import hmac
import secrets
import time

from app.config import current
from app.domain.errors import Unauthorized

PREFIX = "whsec_"  # Standard Webhooks' prefix of a secret


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def verify(secret: str, body: bytes, headers, now: float | None = None) -> str:
    """The scheme that signed ``body`` ("github" or "standard"); raises Unauthorized."""
    if headers.get("X-Hub-Signature-256"):
        return _verify_github(secret, body, headers["X-Hub-Signature-256"])
    if headers.get("webhook-signature"):
        return _verify_standard(secret, body, headers, time.time() if now is None else now)
    raise Unauthorized("no signature: send X-Hub-Signature-256 or the webhook-* headers")


def _verify_github(secret: str, body: bytes, header: str) -> str:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), header.strip().encode()):
        raise Unauthorized("bad X-Hub-Signature-256")
    return "github"


def _verify_standard(secret: str, body: bytes, headers, now: float) -> str:
    msg_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not msg_id or not stamp:
        raise Unauthorized("webhook-id and webhook-timestamp are required with webhook-signature")
    try:
        sent = int(stamp)
    except ValueError:
        raise Unauthorized("webhook-timestamp must be Unix seconds") from None
    window = current().webhook_replay_window_s  # a replayed delivery's timestamp is old
    if abs(now - sent) > window:
        raise Unauthorized(f"webhook-timestamp is outside the {window:g}-second window")
    expected = standard_signature(secret, msg_id, sent, body)
    offered = [part.partition(",")[2] for part in headers["webhook-signature"].split()]
    if not any(hmac.compare_digest(expected.encode(), sig.encode()) for sig in offered):
        raise Unauthorized("bad webhook-signature")
    return "standard"


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def standard_headers(secret: str, msg_id: str, body: bytes, now: float | None = None) -> dict:
    """The headers of a Standard Webhooks delivery of ``body`` (Brisa's own callbacks)."""
    stamp = int(time.time() if now is None else now)
    signature = standard_signature(secret, msg_id, stamp, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": f"v1,{signature}",
    }


# The header that carries each verified scheme's delivery id. Standard Webhooks signs its
# id; GitHub's signature covers neither an id nor a time, so anyone holding one signed
# delivery can re-send it with a new X-GitHub-Delivery (the README says so).
DELIVERY_ID_HEADERS = {"github": "X-GitHub-Delivery", "standard": "webhook-id"}
LONGEST_DELIVERY_ID = 150  # longer ids are kept as their SHA-256, never cut short


def delivery_id(scheme: str, headers) -> str | None:
    """The id of this delivery under ``scheme``, the one that verified it: a repeat of it is
    the same delivery. Headers of other schemes are not trusted (they are not verified)."""
    value = headers.get(DELIVERY_ID_HEADERS[scheme])
    if not value:
        return None
    if len(value) > LONGEST_DELIVERY_ID:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def callback_secret(secret_key: str) -> str:
    """The secret Brisa signs its callbacks with, derived from SECRET_KEY."""
    raw = hmac.new(secret_key.encode(), b"brisa-callbacks", hashlib.sha256).digest()
    return PREFIX + base64.b64encode(raw).decode()
