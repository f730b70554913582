"""Signing webhooks the way JeriCommerce does, in every accepted spelling."""

from __future__ import annotations

import base64
import hashlib
import hmac

from service.ingest import EVENT_TYPE_HEADER, SIGNATURE_HEADER

# The secret the test services run with (benchmarks and the demo have theirs).
SECRET = "test-secret"

# hex (either case) or standard base64, optionally behind `sha256=`.
STYLES = ("hex", "HEX", "base64", "hex+prefix", "HEX+prefix", "base64+prefix")


def digest(body: bytes, secret: str | bytes = SECRET) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).digest()


def styled(raw: bytes, style: str = "hex") -> str:
    """A digest (right or wrong) written in one of STYLES."""
    hex_ = raw.hex()
    value = {
        "hex": hex_,
        "HEX": hex_.upper(),
        "base64": base64.b64encode(raw).decode(),
    }[style.removesuffix("+prefix")]
    return "sha256=" + value if style.endswith("+prefix") else value


def sign(body: bytes, secret: str | bytes = SECRET, style: str = "hex") -> str:
    """The signature header's value for `body`."""
    return styled(digest(body, secret), style)


def headers(
    body: bytes, event_type: str, secret: str | bytes = SECRET
) -> dict[str, str]:
    """The headers of a signed JSON webhook."""
    return {
        SIGNATURE_HEADER: sign(body, secret),
        EVENT_TYPE_HEADER: event_type,
        "content-type": "application/json",
    }
