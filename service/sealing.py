"""Sealing with AES-256-GCM as stored: a random 96-bit nonce, then the
ciphertext and its tag; the associated data is the caller's (an event's
clear header, a quarantined request's ids)."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.masterkey import NONCE


def seal(
    aead: AESGCM, plaintext: bytes, aad: bytes, nonce: bytes | None = None
) -> bytes:
    """`plaintext` sealed under a random nonce (or `nonce`, drawn at random
    by the caller: a batch draws all of its nonces at once)."""
    if nonce is None:
        nonce = os.urandom(NONCE)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def nonces(count: int) -> list[bytes]:
    """`count` random nonces from one read of the OS's random source (a
    system call each, otherwise)."""
    pool = os.urandom(NONCE * count)
    return [pool[i : i + NONCE] for i in range(0, NONCE * count, NONCE)]


def unseal(aead: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    return aead.decrypt(sealed[:NONCE], sealed[NONCE:], aad)
