"""AIP-158 paging: page sizes and opaque page tokens bound to their filters.

A token is base64url JSON `{"c": cursor, "f": digest of the filters}`. It
is not signed: several API processes behind one load balancer must accept
each other's tokens, and a forged cursor can only start a page where a
caller could have started one anyway. So every token is validated as a
whole instead (alphabet, JSON shape, the cursor's type and range, text a
database can bind), and anything else is INVALID_ARGUMENT before any query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from service.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Ids are capped far below this at the ingress; a cursor is one id.
MAX_CURSOR_TEXT = 65_536
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_DIGEST = re.compile(r"[0-9a-f]{16}")

T = TypeVar("T")


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


def _not_issued() -> InvalidArgument:
    return InvalidArgument("page_token", "is not a token this API issued")


def decode_token(
    token: str, filters: dict[str, Any], cursor: Callable[[Any], T]
) -> T | None:
    """The cursor in `token` as `cursor` validates it, or None for the first
    page. Any token this API did not issue is InvalidArgument."""
    if not token:
        return None
    if not _TOKEN_ALPHABET.fullmatch(token):
        raise _not_issued()
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
    # RecursionError: deeply nested JSON; ValueError covers bad UTF-8 and
    # integers too long to convert.
    except (binascii.Error, ValueError, RecursionError):
        raise _not_issued() from None
    if not (isinstance(data, dict) and data.keys() == {"c", "f"}):
        raise _not_issued()
    digest = data["f"]
    if not (isinstance(digest, str) and _DIGEST.fullmatch(digest)):
        raise _not_issued()
    if digest != _fingerprint(filters):
        raise InvalidArgument(
            "page_token", "was issued for a request with different filters"
        )
    return cursor(data["c"])


def position_cursor(value: Any) -> int:
    """A global position: an int64 >= 0 (not a bool, which is an int)."""
    if type(value) is not int or not 0 <= value <= INT64_MAX:
        raise _not_issued()
    return value


def text_cursor(value: Any) -> str:
    """An id: text a database can bind (UTF-8, no NUL), of bounded length."""
    if not isinstance(value, str) or len(value) > MAX_CURSOR_TEXT or "\x00" in value:
        raise _not_issued()
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        raise _not_issued() from None
    return value


def ledger_cursor(value: Any) -> tuple[int, str]:
    """(microseconds since the epoch as an int64, event id)."""
    if not (isinstance(value, list) and len(value) == 2):
        raise _not_issued()
    micros, event_id = value
    if type(micros) is not int or not INT64_MIN <= micros <= INT64_MAX:
        raise _not_issued()
    return micros, text_cursor(event_id)
