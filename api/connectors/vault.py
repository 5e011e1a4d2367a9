"""Credentials at rest: one MultiFernet token per connector, from `TPA_SECRET_KEYS`.

The keys are Fernet keys, newest first: a token is written with the first and read with any, so
a new key goes in front, `flask --app api connectors rotate-keys` re-encrypts every connector's
credentials with it, and then the old key can be dropped. No Flask here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(Exception):
    """The credentials cannot be sealed or opened; the message never carries a secret."""


class Vault:
    def __init__(self, keys: Sequence[str]):
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys]) if keys else None
        except (ValueError, TypeError):
            raise VaultError(
                "TPA_SECRET_KEYS must be comma-separated Fernet keys (32 url-safe base64-encoded bytes each)."
            ) from None

    @property
    def ready(self) -> bool:
        return self._fernet is not None

    def seal(self, credentials: dict[str, Any]) -> str:
        return self._need().encrypt(orjson.dumps(credentials)).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            opened: dict[str, Any] = orjson.loads(self._need().decrypt(token.encode()))
        except InvalidToken:
            raise VaultError("The credentials cannot be decrypted with any key in TPA_SECRET_KEYS.") from None
        return opened

    def reseal(self, token: str) -> str:
        """The same credentials encrypted with the newest key."""
        try:
            return self._need().rotate(token.encode()).decode()
        except InvalidToken:
            raise VaultError("The credentials cannot be decrypted with any key in TPA_SECRET_KEYS.") from None

    def _need(self) -> MultiFernet:
        if self._fernet is None:
            raise VaultError(
                "Connectors need TPA_SECRET_KEYS: at least one Fernet key to encrypt credentials."
            )
        return self._fernet


def new_key() -> str:
    return Fernet.generate_key().decode()
