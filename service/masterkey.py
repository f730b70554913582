"""The master key: read from MASTER_KEY_FILE (or created on the embedded
default), it wraps every customer's data key and nothing else.

The file holds 32 random bytes in base64, as `openssl rand -base64 32`
prints them. A missing, unreadable or malformed file is a start-up error,
never a silent new key: a new key could not unwrap the store's data keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.config import ConfigError, Settings

NONCE = 12
DEFAULT_NAME = "master.key"


class MasterKey:
    """AES-256-GCM under the master key, and the key's public id (a
    fingerprint that names it without revealing it)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a master key is 32 bytes")
        self._aead = AESGCM(key)
        # Where it was read from, for error messages ("MASTER_KEY_FILE (path)").
        self.source = "the master key file"
        self.id = hmac.new(key, b"loyalty master key id", hashlib.sha256).hexdigest()[
            :16
        ]

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(sealed[:NONCE], sealed[NONCE:], aad)

    @classmethod
    def generate(cls) -> tuple[MasterKey, bytes]:
        """A new key and the file content that holds it."""
        key = AESGCM.generate_key(bit_length=256)
        return cls(key), base64.b64encode(key) + b"\n"


def read_master_key(path: Path, name: str = "MASTER_KEY_FILE") -> MasterKey:
    """The key in `path`; `name` says in errors which setting named it."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{name}: {path} does not exist") from None
    except OSError as e:
        raise ConfigError(f"{name}: {path} cannot be read ({e.strerror})") from None
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{name}: {path} is not base64 (create one with `openssl rand -base64 32`)"
        ) from None
    if len(key) != 32:
        raise ConfigError(
            f"{name}: {path} holds {len(key)} bytes, not 32 "
            "(create one with `openssl rand -base64 32`)"
        )
    master = MasterKey(key)
    master.source = f"{name} ({path})"
    return master


def write_new_master_key(path: Path, *, create_parents: bool = False) -> MasterKey:
    """Create `path` (it must not exist) holding a new key, readable by the
    owner only. Its directory must exist unless `create_parents`: a typo in
    an operator's path must not become a new directory holding the key."""
    key, content = MasterKey.generate()
    if create_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise ConfigError(
            f"{path.parent} is not a directory: create it first, or give a "
            "key file in an existing one"
        )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    return key


def embedded_master_key(data_dir: Path) -> tuple[MasterKey, Path, bool]:
    """The embedded default's key, DATA_DIR/master.key, created if missing
    (the store refuses it later if its data keys were wrapped under
    another)."""
    path = data_dir / DEFAULT_NAME
    name = "the default key file"
    created = not path.exists()
    key = (
        write_new_master_key(path, create_parents=True)
        if created
        else read_master_key(path, name)
    )
    key.source = f"{name} {path} (MASTER_KEY_FILE is unset)"
    return key, path, created


def resolve_master_key(settings: Settings) -> tuple[MasterKey, Path, bool]:
    """(key, its file, whether it was just created). Only the embedded
    default may create one, and only under DATA_DIR."""
    if settings.master_key_file is not None:
        return (
            read_master_key(settings.master_key_file),
            settings.master_key_file,
            False,
        )
    if settings.database_url:
        raise ConfigError(
            "MASTER_KEY_FILE is missing, and has no default with DATABASE_URL: "
            "create one with `openssl rand -base64 32 > master.key; chmod 600 "
            "master.key` and set MASTER_KEY_FILE to its path (every process of "
            "the deployment needs the same file)"
        )
    return embedded_master_key(settings.data_dir)
