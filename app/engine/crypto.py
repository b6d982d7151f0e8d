"""Encryption at rest for secrets and webhook secrets: Fernet (AES-128-CBC + HMAC-SHA256,
from the well-kept ``cryptography`` package) with a key derived from SECRET_KEY."""

import base64
import hashlib

from cryptography.fernet import Fernet

from app.config import current


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"brisa-secrets:" + current().secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()
