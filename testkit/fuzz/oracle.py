"""What docs/webhooks.md allows for a request, written independently of the
service's parser: the oracle the ingress fuzz tests check each answer with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from testkit.signing import SECRET

MAX_BODY = 65_536
MAX_ID_LENGTH = 256  # the default
SIG = "x-jericommerce-hmac-sha256"
TYPE = "x-jericommerce-event-type"

ALLOW_200 = frozenset({200})
ALLOW_400 = frozenset({400})
ALLOW_EITHER = frozenset({200, 400})
ALLOW_401 = frozenset({401})
ALLOW_413 = frozenset({413})
HEAD_TOO_LARGE = frozenset({400, 413, 431})


# --- the oracle: what docs/webhooks.md allows for a body --------------------


class _NonStandard(ValueError):
    pass


def _reject(name: str) -> Any:
    raise _NonStandard(name)


class _Repeated(ValueError):
    pass


def _distinct(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise _Repeated()
    return dict(pairs)


def nesting_depth(text: str | bytes) -> int:
    """Deepest bracket nesting outside strings (good enough for the oracle)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


@dataclass(frozen=True)
class Verdict:
    allowed: frozenset[int]
    event_id: str | None = None  # when the body is (maybe) a valid envelope
    why: str = ""


def judge(body: bytes, event_type: str | None) -> Verdict:
    """The answers docs/webhooks.md allows for a correctly signed `body`.

    Strict where the documentation is explicit; both 200 and 400 where it leaves
    room (unicode whitespace, leniency about encodings, parser limits)."""
    if len(body) > MAX_BODY:
        return Verdict(ALLOW_413, why="too large")
    lenient = False
    if event_type is None or not event_type.strip(" \t"):
        return Verdict(ALLOW_400, why="no event type")
    if not event_type.strip():
        lenient = True  # only unicode whitespace: blank or not, both fine
    if has_surrogate(event_type):
        lenient = True  # raw non-UTF-8 header bytes: refusing them is fine
    encoding = json.detect_encoding(body)
    if encoding != "utf-8":
        # UTF-16/32 (an old RFC allowed them) or a BOM (RFC 8259 lets parsers
        # ignore it): accepting them is as fine as refusing them.
        lenient = True
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError:
        return Verdict(ALLOW_400, why="not UTF-8")
    if nesting_depth(text) > 200:
        lenient = True  # a parser may refuse deep nesting
    try:
        envelope = json.loads(
            text,
            parse_constant=_reject,
            parse_float=Decimal,
            object_pairs_hook=_distinct,
        )
    except _NonStandard:
        return Verdict(ALLOW_400, why="NaN/Infinity")
    except _Repeated:
        return Verdict(ALLOW_400, why="an object repeats a key")
    except RecursionError:
        return Verdict(ALLOW_EITHER, why="too deep for the oracle")
    except ValueError as e:
        if "integer string conversion" in str(e):  # > 4300 digits
            return Verdict(ALLOW_EITHER, why="huge integer")
        return Verdict(ALLOW_400, why="not JSON")
    if not isinstance(envelope, dict):
        return Verdict(ALLOW_400, why="not an object")
    for key in ("id", "customerId"):
        value = envelope.get(key)
        if not isinstance(value, str) or value == "":
            return Verdict(ALLOW_400, why=f"bad {key}")
        if not value.strip():
            lenient = True  # blank: "non-empty" either way
        if len(value) > MAX_ID_LENGTH:
            return Verdict(ALLOW_400, why=f"{key} too long")
    created = envelope.get("createdAt")
    if not isinstance(created, str):
        return Verdict(ALLOW_400, why="bad createdAt")
    try:
        datetime.fromisoformat(created).astimezone(UTC)
    except ValueError:
        try:
            datetime.fromisoformat(created.strip())
        except ValueError:
            return Verdict(ALLOW_400, why="createdAt not ISO-8601")
        lenient = True  # surrounding whitespace
    except OverflowError:
        lenient = True  # out of range once in UTC
    if "properties" in envelope and not isinstance(envelope["properties"], dict):
        return Verdict(ALLOW_400, why="properties not an object")
    if has_surrogate(envelope):
        lenient = True  # JSON allows lone \ud800 escapes; storing them is moot
    return Verdict(
        ALLOW_EITHER if lenient else ALLOW_200, envelope["id"], why="valid envelope"
    )


def signature_is_valid(body: bytes, header: str | None) -> bool:
    """The documented rule: HMAC-SHA256 of the raw body as hex (either case)
    or standard base64, optionally behind `sha256=`."""
    if header is None:
        return False
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    value = header.strip()
    if value[:7].lower() == "sha256=":
        value = value[7:].strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return bytes.fromhex(value) == expected
    if re.fullmatch(r"[A-Za-z0-9+/]{43}=", value):
        return base64.b64decode(value) == expected
    return False
