"""Signature checks, pure: GitHub's and Standard Webhooks' schemes."""

import base64
import hashlib
import hmac

import pytest

from app.domain.errors import Unauthorized
from app.engine import webhooks

SECRET = webhooks.new_secret()
BODY = b'{"action": "opened"}'
NOW = 1_800_000_000


def github(body=BODY, secret=SECRET) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}"}


def standard(body=BODY, secret=SECRET, stamp=NOW, msg_id="msg_1") -> dict:
    return webhooks.standard_headers(secret, msg_id, body, now=stamp)


def test_secrets_are_whsec_and_32_random_bytes():
    assert SECRET.startswith("whsec_")
    assert len(base64.b64decode(SECRET.removeprefix("whsec_"))) == 32
    assert webhooks.new_secret() != SECRET


def test_a_github_signature_is_accepted():
    assert webhooks.verify(SECRET, BODY, github(), now=NOW) == "github"


def test_a_standard_webhooks_signature_is_accepted_among_several():
    headers = standard()
    headers["webhook-signature"] = "v1,bm90IGl0 " + headers["webhook-signature"]
    assert webhooks.verify(SECRET, BODY, headers, now=NOW + 10) == "standard"


def test_standard_signs_with_the_decoded_key_not_the_string():
    # the reference construction from the Standard Webhooks spec
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, b"msg_1.%d." % NOW + BODY, hashlib.sha256).digest()
    ).decode()
    assert standard()["webhook-signature"] == f"v1,{expected}"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no signature"),
        (github(secret=webhooks.new_secret()), "bad X-Hub-Signature-256"),
        (github(body=b'{"action": "closed"}'), "bad X-Hub-Signature-256"),
        (standard(secret=webhooks.new_secret()), "bad webhook-signature"),
        (standard(body=b"tampered"), "bad webhook-signature"),
        (standard(stamp=NOW - 301), "outside the 300-second window"),
        (standard(stamp=NOW + 301), "outside the 300-second window"),
        ({**standard(), "webhook-timestamp": "soon"}, "Unix seconds"),
        ({"webhook-signature": standard()["webhook-signature"]}, "are required"),
    ],
)
def test_bad_deliveries_are_refused_with_the_reason(headers, reason):
    with pytest.raises(Unauthorized, match=reason):
        webhooks.verify(SECRET, BODY, headers, now=NOW)


def test_the_delivery_id_comes_only_from_the_scheme_that_verified_it():
    """#16.3: an unsigned X-GitHub-Delivery added to a Standard Webhooks delivery made a
    new run for each value."""
    both = {"X-GitHub-Delivery": "attacker-1", "webhook-id": "msg_1", "Idempotency-Key": "k"}
    assert webhooks.delivery_id("standard", both) == "msg_1"
    assert webhooks.delivery_id("github", both) == "attacker-1"
    assert webhooks.delivery_id("standard", {"Idempotency-Key": "k"}) is None
    assert webhooks.delivery_id("github", {}) is None


def test_a_long_delivery_id_is_never_cut_into_a_collision():
    """#15.1: ids longer than 150 characters were truncated, so two that differ only after
    that were one delivery."""
    first, second = "x" * 150 + "a", "x" * 150 + "b"
    keys = {webhooks.delivery_id("standard", {"webhook-id": v}) for v in (first, second)}
    assert len(keys) == 2
    assert all(len(key) <= 200 for key in keys)  # the key column's width
    assert webhooks.delivery_id("standard", {"webhook-id": "y" * 150}) == "y" * 150
