"""Signature variants, event-name normalising and envelope parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.events import EventType, name_key, parse_event_type
from service.ingest import InvalidWebhook, parse_envelope, verify_signature

BODY = b'{"id":"e1","customerId":"c1","createdAt":"2026-03-08T12:00:00Z"}'
SECRET = b"s3cret"
DIGEST = hmac.new(SECRET, BODY, hashlib.sha256).digest()


@pytest.mark.parametrize(
    "header",
    [
        DIGEST.hex(),
        DIGEST.hex().upper(),
        base64.b64encode(DIGEST).decode(),
        "sha256=" + DIGEST.hex(),
        "sha256=" + DIGEST.hex().upper(),
        "sha256=" + base64.b64encode(DIGEST).decode(),
        "SHA256=" + DIGEST.hex(),
        "  " + DIGEST.hex() + " ",
    ],
)
def test_signature_encodings_accepted(header: str) -> None:
    assert verify_signature(BODY, header, [SECRET])


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        DIGEST.hex()[:-2],
        DIGEST.hex()[:-1] + ("0" if DIGEST.hex()[-1] != "0" else "1"),
        base64.urlsafe_b64encode(b"\xff" * 32).decode(),
        hmac.new(b"other", BODY, hashlib.sha256).hexdigest(),
        hashlib.sha256(BODY).hexdigest(),
        "not a signature at all",
    ],
)
def test_wrong_or_missing_signature_rejected(header: str | None) -> None:
    assert not verify_signature(BODY, header, [SECRET])


def test_signature_is_over_the_raw_bytes_not_reserialised_json() -> None:
    spaced = BODY.replace(b",", b", ")
    assert not verify_signature(spaced, DIGEST.hex(), [SECRET])


def test_any_secret_of_a_rotation_verifies() -> None:
    assert verify_signature(BODY, DIGEST.hex(), [b"old", SECRET])
    assert not verify_signature(BODY, DIGEST.hex(), [b"old", b"older"])
    assert not verify_signature(BODY, DIGEST.hex(), [])


@given(
    st.lists(st.binary(max_size=200), min_size=1, max_size=3), st.binary(max_size=300)
)
def test_each_secret_verifies_its_own_signatures_only(
    secrets: list[bytes], body: bytes
) -> None:
    # Keys longer than SHA-256's block (64 bytes) are hashed first: both
    # sides of that rule, and the same body signed again and again (each
    # check starts from a copy of the secret's keyed context).
    for secret in secrets:
        header = hmac.new(secret, body, hashlib.sha256).hexdigest()
        for _ in range(2):
            assert verify_signature(body, header, secrets)
        # HMAC pads short keys with zeros: b"k" and b"k\0" sign alike.
        others = [
            s
            for s in [*secrets, secret + b"x"]
            if hmac.new(s, body, hashlib.sha256).hexdigest() != header
        ]
        assert others
        assert not verify_signature(body, header, others)


def rule(body: bytes, header: str) -> bool:
    """The signature rule written out independently: HMAC-SHA256 of the raw
    body as 64 hex digits (either case) or standard padded base64, optionally
    behind `sha256=` (any case), surrounding spaces ignored."""
    value = header.strip()
    if value[:7].lower() == "sha256=":
        value = value[7:].strip()
    expected = hmac.new(SECRET, body, hashlib.sha256).digest()
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return bytes.fromhex(value) == expected
    if re.fullmatch(r"[A-Za-z0-9+/]{43}=", value):
        return base64.b64decode(value) == expected
    return False


@given(st.binary(max_size=300), st.text(max_size=100))
def test_verify_follows_the_rule_for_any_header(body: bytes, header: str) -> None:
    assert verify_signature(body, header, [SECRET]) is rule(body, header)


@given(
    st.binary(max_size=300),
    st.sampled_from(["hex", "HEX", "base64"]),
    st.sampled_from(["", "sha256=", "SHA256=", "Sha256= "]),
    st.sampled_from(["", " ", "\t"]),
    st.booleans(),
)
def test_verify_follows_the_rule_for_signed_and_damaged_headers(
    body: bytes, style: str, prefix: str, pad: str, damage: bool
) -> None:
    digest = hmac.new(SECRET, body, hashlib.sha256).digest()
    if damage:  # one bit off: a forgery that is well formed
        digest = bytes([digest[0] ^ 1]) + digest[1:]
    value = {
        "hex": digest.hex(),
        "HEX": digest.hex().upper(),
        "base64": base64.b64encode(digest).decode(),
    }[style]
    header = pad + prefix + value + pad
    assert rule(body, header) is not damage
    assert verify_signature(body, header, [SECRET]) is not damage


@pytest.mark.parametrize(
    "name",
    [
        "Balance changed",
        "balance_changed",
        "balance.changed",
        "BALANCE_CHANGED",
        "balanceChanged",
        "Balance-Changed",
        " balance changed ",
    ],
)
def test_event_names_are_case_and_separator_insensitive(name: str) -> None:
    assert parse_event_type(name) is EventType.BALANCE_CHANGED


def test_all_eighteen_names_are_known_and_distinct() -> None:
    assert len(EventType) == 18
    assert len({name_key(t.value) for t in EventType}) == 18
    for t in EventType:
        assert parse_event_type(t.value) is t
        assert parse_event_type(t.name) is t
        assert parse_event_type(t.name.lower().replace("_", ".")) is t


def test_unknown_name_is_none() -> None:
    assert parse_event_type("Points expired") is None


def test_envelope_parsed() -> None:
    raw = (
        b'{"id":"e1","customerId":"c1","createdAt":"2026-03-08T12:00:00",'
        b'"properties":{"amount":10.5},"extra":[1,2]}'
    )
    env = parse_envelope(raw, "Balance changed")
    assert env.id == "e1"
    assert env.customer_id == "c1"
    assert env.type is EventType.BALANCE_CHANGED
    assert env.type_name == "Balance changed"
    assert env.created_at == datetime(2026, 3, 8, 12, tzinfo=UTC)  # no offset: UTC
    assert env.body["properties"]["amount"] == Decimal("10.5")  # exact, not float
    assert env.raw == raw


def test_created_at_offset_normalised_to_utc() -> None:
    raw = b'{"id":"e1","customerId":"c1","createdAt":"2026-03-08T14:00:00+02:00"}'
    env = parse_envelope(raw, "x")
    assert env.created_at == datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert env.created_at.utcoffset() == timedelta(0)


def test_unknown_type_still_parses() -> None:
    env = parse_envelope(BODY, "Points expired")
    assert env.type is None and env.type_name == "Points expired"


@pytest.mark.parametrize(
    ("raw", "header", "reason"),
    [
        (b"not json", "x", "not valid UTF-8 JSON"),
        (b"\xff\xfe{", "x", "not valid UTF-8 JSON"),
        (b"[1,2]", "x", "JSON object"),
        (b'{"customerId":"c","createdAt":"2026-01-01"}', "x", "id"),
        (b'{"id":"","customerId":"c","createdAt":"2026-01-01"}', "x", "id"),
        (b'{"id":7,"customerId":"c","createdAt":"2026-01-01"}', "x", "id"),
        (b'{"id":"e","createdAt":"2026-01-01"}', "x", "customerId"),
        (b'{"id":"e","customerId":"  ","createdAt":"2026-01-01"}', "x", "customerId"),
        (b'{"id":"e","customerId":"c"}', "x", "createdAt"),
        (b'{"id":"e","customerId":"c","createdAt":"yesterday"}', "x", "createdAt"),
        (b'{"id":"e","customerId":"c","createdAt":1700000000}', "x", "createdAt"),
        (b'{"id":"e","customerId":"c","createdAt":"2026-01-01","x":NaN}', "x", "NaN"),
        (
            b'{"id":"e","customerId":"c","createdAt":"2026-01-01","x":Infinity}',
            "x",
            "Infinity",
        ),
        (
            b'{"id":"e","customerId":"c","createdAt":"2026-01-01","properties":[]}',
            "x",
            "properties",
        ),
        (BODY, None, "header"),
        (BODY, "", "header"),
        (BODY, "   ", "header"),
        (b"[" * 100_000, "x", "nested"),
    ],
)
def test_invalid_envelopes_have_a_short_reason(
    raw: bytes, header: str | None, reason: str
) -> None:
    with pytest.raises(InvalidWebhook, match=reason):
        parse_envelope(raw, header)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-32-be"])
def test_bodies_in_other_encodings_than_utf8_are_refused(encoding: str) -> None:
    """Stored bodies are UTF-8, so readers decode them as UTF-8 only."""
    with pytest.raises(InvalidWebhook, match="not valid UTF-8 JSON"):
        parse_envelope(BODY.decode().encode(encoding), "x")


@pytest.mark.parametrize(
    ("raw", "header"),
    [
        (BODY.replace(b'"e1"', b'"e\\ud800"'), "x"),
        (BODY.replace(b"}", b',"properties":{"k\\udc00":"v"}}'), "x"),
        (BODY.replace(b"}", b',"properties":{"k":["v\\uD83D"]}}'), "x"),
        (BODY, "Balance\udcffchanged"),  # a raw non-UTF-8 header byte
    ],
)
def test_lone_surrogates_are_refused(raw: bytes, header: str) -> None:
    """Strings with no UTF-8 form never reach the store (protobuf and the
    databases refuse them), so readers need no fallback for them."""
    with pytest.raises(InvalidWebhook, match=r"surrogate|not UTF-8"):
        parse_envelope(raw, header)


@given(st.binary(max_size=200), st.text(max_size=30))
def test_parse_envelope_raises_only_invalid_webhook(raw: bytes, header: str) -> None:
    try:
        parse_envelope(raw, header)
    except InvalidWebhook as e:
        assert str(e)


# --- one reading of every body -------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            b'{"id":"dupA","customerId":"c","createdAt":"2026-01-01","id":"dupB"}',
            'repeats the key "id"',
        ),
        (
            b'{"id":"e","customerId":"a","customerId":"b","createdAt":"2026-01-01"}',
            'repeats the key "customerId"',
        ),
        # The same name spelled with an escape is the same name.
        (
            b'{"id":"a","customerId":"c","createdAt":"2026-01-01","\\u0069d":"b"}',
            'repeats the key "id"',
        ),
        (
            b'{"id":"e","customerId":"c","createdAt":"2026-01-01",'
            b'"properties":{"amount":1,"amount":2}}',
            "repeats a key",
        ),
        (
            b'{"id":"e","customerId":"c","createdAt":"2026-01-01",'
            b'"properties":{"x":[{"y":{"z":1,"z":1}}]}}',
            "repeats a key",
        ),
        (
            b'{"id":"e","customerId":"c","createdAt":"2026-01-01",'
            b'"properties":{},"properties":{}}',
            'repeats the key "properties"',
        ),
    ],
)
def test_a_repeated_key_at_any_depth_is_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidWebhook, match=reason):
        parse_envelope(raw, "Balance changed")


def test_a_repeated_key_is_named_only_when_it_is_an_envelope_field() -> None:
    raw = (
        b'{"id":"e","customerId":"c","createdAt":"2026-01-01",'
        b'"properties":{"someone@example.com":1,"someone@example.com":2}}'
    )
    with pytest.raises(InvalidWebhook) as e:
        parse_envelope(raw, "x")
    assert "someone" not in str(e.value)
    assert str(e.value) == "body repeats a key in one JSON object"


def test_equal_keys_in_different_objects_are_fine() -> None:
    raw = (
        b'{"id":"e","customerId":"c","createdAt":"2026-01-01",'
        b'"properties":{"id":"p","a":{"id":"q"},"b":[{"id":1},{"id":2}]}}'
    )
    env = parse_envelope(raw, "x")
    assert env.id == "e"
    assert env.body["properties"]["b"] == [{"id": 1}, {"id": 2}]


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_trees = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


def _render(value: object, twice: str = "") -> str:
    """JSON text of `value`; an outermost object gets the member `twice` a
    second time."""
    import json

    if isinstance(value, dict):
        members = [f"{json.dumps(k)}:{_render(v)}" for k, v in value.items()]
        if twice:
            members.append(f"{json.dumps(twice)}:0")
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_render(v) for v in value) + "]"
    return json.dumps(value)


@given(
    json_trees,
    st.dictionaries(st.text(min_size=1, max_size=3), json_trees, min_size=1),
)
def test_any_object_with_a_repeated_key_is_refused(
    tree: object, obj: dict[str, object]
) -> None:
    """An object with a repeated name, put anywhere in a valid envelope."""
    name = next(iter(obj))
    nested = _render(obj, name)  # `name` appears twice in this object
    raw = (
        '{"id":"e","customerId":"c","createdAt":"2026-01-01","properties":'
        f'{{"tree":{_render(tree)},"deep":[{{"x":{nested}}}]}}}}'
    ).encode("utf-8", "surrogatepass")
    with pytest.raises(InvalidWebhook, match="repeats"):
        parse_envelope(raw, "x")


# --- length of ids -------------------------------------------------------------


@pytest.mark.parametrize("key", ["id", "customerId"])
def test_ids_up_to_the_limit_are_accepted_and_longer_ones_refused(key: str) -> None:
    import json

    def body(value: str) -> bytes:
        fields = {"id": "e", "customerId": "c", "createdAt": "2026-01-01"}
        return json.dumps({**fields, key: value}).encode()

    # Characters, not bytes: 256 four-byte characters still fit.
    at_limit = parse_envelope(body("😀" * 256), "x")
    assert len(at_limit.id if key == "id" else at_limit.customer_id) == 256
    with pytest.raises(InvalidWebhook, match=f"^{key} is longer than 256 char"):
        parse_envelope(body("x" * 257), "x")
    with pytest.raises(InvalidWebhook, match=f"^{key} is longer than 10 char"):
        parse_envelope(body("x" * 11), "x", max_id_length=10)
    assert parse_envelope(body("x" * 10), "x", max_id_length=10)
    with pytest.raises(InvalidWebhook) as e:
        parse_envelope(body("someone@example.com" * 100), "x")
    assert "someone" not in str(e.value)
