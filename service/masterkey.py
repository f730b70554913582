"""The master key: read from MASTER_KEY_FILE (or created by the embedded
default, service/backends/sqlite/keyfile.py), it wraps every customer's
data key and nothing else.

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
import stat
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service import logs
from service.config import ConfigError

NONCE = 12
log = logs.get(__name__)


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
        check_mode(path)
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
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    # The file's name is an entry in its directory: sync that too, or a
    # power loss can lose the key of a store that already uses it.
    fsync_dir(path.parent)
    return key


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_key_file(path: Path) -> None:
    """Remove a key file this process created and never used."""
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def check_mode(path: Path) -> None:
    """Refuse a key file others may write (they could swap the key); warn,
    loudly and at every start, when others may read it (a secret mount is
    often 0644 or 0444, and refusing those would stop a deployment)."""
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        return  # read_bytes says what is wrong with it
    if mode & 0o022:
        raise ConfigError(
            f"MASTER_KEY_FILE: {path} can be written by others (mode "
            f"{mode & 0o777:o}): anyone who can replace it can take the data "
            f"keys; `chmod 600 {path}`"
        )
    if mode & 0o044:
        log.warning(
            "the master key file can be read by others: `chmod 600` it",
            path=str(path),
            mode=f"{mode & 0o777:o}",
        )
