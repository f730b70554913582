"""AIP-158 paging: page sizes and opaque page tokens bound to their filters."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from service.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size", "must not be negative")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def _fingerprint(filters: dict[str, Any]) -> str:
    raw = json.dumps(filters, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_token(cursor: Any, filters: dict[str, Any]) -> str:
    """Opaque to callers; carries where the next page starts and a digest of
    the request's filters, so a token reused with other filters is refused."""
    raw = json.dumps({"c": cursor, "f": _fingerprint(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, filters: dict[str, Any]) -> Any:
    """The cursor in `token`, or None for the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor, digest = data["c"], data["f"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token", "is not a token this API issued") from None
    if digest != _fingerprint(filters):
        raise InvalidArgument(
            "page_token", "was issued for a request with different filters"
        )
    return cursor
