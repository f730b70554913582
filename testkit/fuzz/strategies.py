"""Hypothesis strategies for the ingress fuzz tests: envelopes (valid and
not), signed garbage, forged signatures, odd event-type headers. They include
the inputs of bugs found by fuzzing and fixed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from projections.events import EventType
from testkit.fuzz.oracle import MAX_ID_LENGTH
from testkit.signing import SECRET, STYLES, digest, sign, styled

# --- strategies -------------------------------------------------------------


class Raw(str):
    """A JSON token written as it is: 1e400, NaN, a 500-digit integer..."""


HUGE_NUMBERS = [
    "1e400", "-1e400", "1e-400", "1E+308", "-0", "0e0", "1.0e-7",
    "1" + "0" * 500, "-" + "9" * 400, "12345678901234567890.123456789",
]  # fmt: skip
NONSTANDARD = ["NaN", "Infinity", "-Infinity"]


def to_json(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{to_json(k)}:{to_json(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


texts = st.text(max_size=20) | st.sampled_from(["\ud800", "a\udfffb", "\udc00@x"])
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | st.sampled_from(HUGE_NUMBERS).map(Raw)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4)
    ),
    max_leaves=12,
)
PROPERTY_NAMES = [
    "amount", "previousBalance", "pointsToNextReward", "nextRewardName", "email",
    "firstName", "lastName", "phoneNumber", "current", "previous", "code",
    "rewardId", "claimId", "rewardValue", "rewardCost", "age", "downloadLink",
    "mailSent", "url", "referral", "utmSource",
]  # fmt: skip
properties = st.dictionaries(
    st.sampled_from(PROPERTY_NAMES) | texts, json_values, max_size=6
)
# Mostly unique (so most valid bodies are stored), some short (duplicates).
ids = st.one_of(
    st.tuples(st.text(max_size=16), st.uuids()).map(lambda t: f"{t[0]}{t[1]}"),
    st.uuids().map(str),
    st.text(min_size=1, max_size=8).filter(str.strip),
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
zones: Any = st.none() | st.just(UTC) | offsets  # the stubs want None only
datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=zones,
)
created_ats = st.one_of(
    datetimes.map(datetime.isoformat),
    datetimes.map(lambda d: d.isoformat(timespec="seconds").replace("+00:00", "Z")),
    datetimes.map(lambda d: d.isoformat(timespec="milliseconds")),
    st.dates(min_value=datetime(1970, 1, 2).date()).map(lambda d: d.isoformat()),
)
created_ats = created_ats | st.sampled_from(
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
)


def type_spellings(kind: EventType) -> list[str]:
    words = kind.value.lower().split()
    camel = words[0] + "".join(w.title() for w in words[1:])
    return [
        kind.value, kind.name, kind.name.lower(), "_".join(words), ".".join(words),
        "-".join(words), camel, camel[0].upper() + camel[1:], kind.value.upper(),
    ]  # fmt: skip


KNOWN_SPELLINGS = [s for kind in EventType for s in type_spellings(kind)]
event_types = st.sampled_from(KNOWN_SPELLINGS) | st.from_regex(
    r"[A-Za-z][A-Za-z0-9 _.\-]{0,29}", fullmatch=True
)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid envelope, with odd but legal content."""
    env: dict[str, Any] = {}
    extras = draw(st.dictionaries(texts, json_values, max_size=3))
    env.update(extras)
    env.update(id=draw(ids), customerId=draw(ids), createdAt=draw(created_ats))
    if draw(st.booleans()):
        env["properties"] = draw(properties)
    if draw(st.booleans()):
        env["email"] = draw(st.emails() | json_values)
    keys = draw(st.permutations(list(env)))
    return {k: env[k] for k in keys}


def encode(env: dict[str, Any]) -> bytes:
    return to_json(env).encode("utf-8", "surrogatepass")


WRONG = {
    "id": st.integers() | st.none() | st.just("") | st.lists(ids, max_size=2),
    "customerId": st.floats() | st.booleans() | st.just("") | st.dictionaries(
        texts, texts, max_size=2
    ),
    "createdAt": st.integers() | st.just("") | texts | st.just("2026-13-45T99:00:00Z")
    | st.just("yesterday") | st.sampled_from(HUGE_NUMBERS).map(Raw),
    "properties": st.lists(json_values, max_size=3) | texts | st.integers()
    | st.just(Raw("1e400")),
    "email": json_values,
}  # fmt: skip
BAD_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\xc0\xaf",
    b"\xe2\x82",
    b"\x80",
    b"\xf8\x88\x80\x80",
]
BAD_UTF8 += [b"\xf4\x90\x80\x80", b"\xc3", b"\xed\xa0\x80", b"\xed\xbf\xbf"]


@st.composite
def garbage_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """(kind, body): mostly not a valid envelope, though the oracle decides."""
    kind = draw(
        st.sampled_from(
            [
                "random bytes", "broken utf-8", "random json", "nan/infinity",
                "deep nesting", "wrong type", "missing field", "truncated",
                "other encoding", "blank", "huge numbers", "repeated key",
                "long id",
            ]
        )
    )  # fmt: skip
    if kind == "random bytes":
        return kind, draw(st.binary(max_size=2000))
    if kind == "random json":
        return kind, to_json(draw(json_values)).encode()
    if kind == "blank":
        return kind, draw(st.sampled_from([b"", b" ", b"\r\n", b"null", b"{}", b"[]"]))
    env = draw(envelopes())
    body = encode(env)
    if kind == "broken utf-8":
        at = draw(st.integers(0, len(body)))
        return kind, body[:at] + draw(st.sampled_from(BAD_UTF8)) + body[at:]
    if kind == "nan/infinity":
        token = Raw(draw(st.sampled_from(NONSTANDARD)))
        where = draw(st.sampled_from(["body", "property", "id", "createdAt"]))
        if where == "body":
            return kind, str(token).encode()
        if where == "property":
            env.setdefault("properties", {})["amount"] = token
        else:
            env[where] = token
        return kind, encode(env)
    if kind == "deep nesting":
        depth = draw(st.integers(10, 5000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        deep = opener * depth + "1" + closer * depth
        if draw(st.booleans()):
            return kind, deep.encode()
        env["properties"] = Raw('{"nested":' + deep + "}")
        return kind, encode(env)
    if kind == "wrong type":
        key = draw(st.sampled_from(list(WRONG)))
        env[key] = draw(WRONG[key])
        return kind, encode(env)
    if kind == "missing field":
        for key in draw(
            st.lists(st.sampled_from(["id", "customerId", "createdAt"]), min_size=1)
        ):
            env.pop(key, None)
        return kind, encode(env)
    if kind == "truncated":
        return kind, body[: draw(st.integers(0, max(0, len(body) - 1)))]
    if kind == "repeated key":
        # A name given twice, at the top (an envelope field or not) or
        # deeper; the oracle tells which reading a parser would pick.
        name = draw(st.sampled_from(["id", "customerId", "createdAt"]) | texts)
        member = f"{json.dumps(name)}:{to_json(draw(json_values))}"
        if draw(st.booleans()):
            return kind, body[:-1] + b"," + member.encode(
                "utf-8", "surrogatepass"
            ) + b"}"
        inner = draw(st.dictionaries(texts, json_values, min_size=1, max_size=3))
        first = next(iter(inner))
        twice = Raw(to_json(inner)[:-1] + f",{json.dumps(first)}:1}}")
        env.setdefault("properties", {})
        if not isinstance(env["properties"], dict):
            env["properties"] = {}
        env["properties"]["nested"] = [twice] if draw(st.booleans()) else twice
        return kind, encode(env)
    if kind == "long id":
        key = draw(st.sampled_from(["id", "customerId"]))
        env[key] = draw(st.sampled_from(["x", "é", "😀"])) * draw(
            st.integers(MAX_ID_LENGTH - 1, MAX_ID_LENGTH + 4)
        )
        return kind, encode(env)
    if kind == "other encoding":
        encoding = draw(st.sampled_from(["utf-16", "utf-16-be", "utf-32", "utf-8-sig"]))
        return kind, json.dumps(env | {"properties": {}}).encode(encoding)
    # huge numbers, everywhere they may go
    props = env.setdefault("properties", {})
    for name in draw(st.lists(st.sampled_from(PROPERTY_NAMES), min_size=1)):
        props[name] = Raw(draw(st.sampled_from(HUGE_NUMBERS)))
    return kind, encode(env)


def signature_for(body: bytes, style: str) -> str:
    return sign(body, SECRET, style)


signature_styles = st.sampled_from(STYLES)
ascii_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=90)


@st.composite
def forged_signatures(draw: st.DrawFn, body: bytes) -> tuple[str, str | None]:
    """(kind, header or None): anything but a valid signature of `body`."""
    kind = draw(
        st.sampled_from(
            [
                "other body", "wrong secret", "flipped nibble", "truncated hex",
                "truncated base64", "random text", "extra byte", "sha1",
                "sha256 of the body", "prefix only", "hex of hex", "empty",
                "missing",
            ]
        )
    )  # fmt: skip
    good = digest(body)
    style = draw(signature_styles)
    if kind == "missing":
        return kind, None
    if kind == "empty":
        return kind, ""
    if kind == "random text":
        return kind, draw(ascii_text)
    if kind == "truncated hex":
        return kind, good.hex()[: draw(st.integers(0, 63))]
    if kind == "truncated base64":
        return kind, base64.b64encode(good).decode()[: draw(st.integers(0, 43))]
    if kind == "wrong secret":
        secret = draw(st.text(min_size=1, max_size=40).filter(lambda s: s != SECRET))
        return kind, sign(body, secret, style)
    if kind == "other body":
        other = draw(st.binary(max_size=200).filter(lambda b: b != body))
        return kind, sign(other, SECRET, style)
    if kind == "flipped nibble":
        hex_ = list(good.hex())
        at = draw(st.integers(0, 63))
        hex_[at] = "0123456789abcdef"[
            (int(hex_[at], 16) + draw(st.integers(1, 15))) % 16
        ]
        return kind, "".join(hex_)
    if kind == "extra byte":
        return kind, styled(good + draw(st.binary(min_size=1, max_size=4)), style)
    if kind == "sha1":
        return kind, hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    if kind == "sha256 of the body":  # no key at all
        return kind, styled(hashlib.sha256(body).digest(), style)
    if kind == "prefix only":
        return kind, "sha256="
    return kind, good.hex().encode().hex()[:64]  # "hex of hex"


# Event-type header values httpx may refuse are sent raw.
HIGH = bytes(0x80 | b for b in range(256))  # maps any byte to one >= 0x80
SEPARATORS = [" ", "_", "-", ".", "/", ":", "  ", "\t", "~", "|", "·", "—", "__"]


@st.composite
def odd_event_types(draw: st.DrawFn) -> tuple[str, bytes | None]:
    kind = draw(
        st.sampled_from(
            ["odd separators", "unicode", "empty", "blank", "long", "too long",
             "missing", "obs-text", "case"]
        )
    )  # fmt: skip
    if kind == "missing":
        return kind, None
    if kind == "empty":
        return kind, b""
    if kind == "blank":
        return kind, draw(st.sampled_from([b" ", b"  ", b"\t", b" \t "]))
    if kind == "odd separators":
        words = draw(st.sampled_from(list(EventType))).value.split()
        seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(words) - 1,
                             max_size=len(words) - 1))  # fmt: skip
        name = words[0] + "".join(s + w for s, w in zip(seps, words[1:], strict=True))
        return kind, name.encode()
    if kind == "case":
        name = draw(st.sampled_from(KNOWN_SPELLINGS))
        flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
        return kind, "".join(
            c.swapcase() if f else c for c, f in zip(name, flips, strict=True)
        ).encode()
    if kind == "unicode":
        chars = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
        return kind, draw(st.text(chars, min_size=1, max_size=40)).encode()
    if kind == "obs-text":  # bytes >= 0x80: UTF-8, or not
        if draw(st.booleans()):
            return kind, draw(st.binary(min_size=1, max_size=12)).translate(HIGH)
        return kind, draw(st.text(st.characters(min_codepoint=0x80), min_size=1,
                                  max_size=12)).encode()  # fmt: skip
    if kind == "long":
        return kind, b"x" * draw(st.integers(100, 6000))
    return kind, b"x" * draw(st.integers(10_000, 20_000))  # too long
