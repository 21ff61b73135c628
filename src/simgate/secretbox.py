"""Encryption at rest for API secrets (the itniotech Sign needs the plain secret back).

Fernet (AES-128-CBC + HMAC-SHA256) keyed from the operator's master key; when none is set, a
random key is generated once into ``DATA_DIR/master.key`` (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from simgate.errors import ConfigError


class SecretBox:
    def __init__(self, master_key: str) -> None:
        if len(master_key) < 16:
            raise ConfigError("master_key must be at least 16 characters")
        digest = hashlib.sha256(master_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ConfigError(
                "cannot decrypt a stored secret: master_key differs from the one it was sealed with"
            ) from None


def key_path(data_dir: Path) -> Path:
    return data_dir / "master.key"


def read_master_key(data_dir: Path, configured: str | None) -> str | None:
    """The configured master key, else the one in ``DATA_DIR/master.key``; None when neither
    exists (:func:`create_master_key` makes one, once the database says none was used)."""
    if configured:
        return configured
    path = key_path(data_dir)
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    return None


def create_master_key(data_dir: Path) -> str:
    """A new random master key, written to ``DATA_DIR/master.key`` (0600; never replaced)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(key_path(data_dir), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


def check_opens(box: SecretBox, sealed: str | None, *, where: str) -> None:
    """Refuse to start with a key that cannot open the secrets the database holds: with it
    every itniotech request of those keys would fail (-18), each one alone and unexplained
    (a database restored without its ``master.key``, or another ``master_key`` configured).
    ``where`` says which key was tried."""
    if sealed is None:
        return
    try:
        box.open(sealed)
    except ConfigError:
        raise ConfigError(
            f"the master key ({where}) does not open the API secrets stored in the database: "
            "use the key they were stored with (restore the master.key saved with the "
            "database's backup, or set master_key as before)"
        ) from None
