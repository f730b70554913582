"""The gRPC API against hostile or buggy clients, in process (a real server
on a free port, a real client): bad page tokens and bad bytes are
INVALID_ARGUMENT, errors do not echo the request, limits answer
RESOURCE_EXHAUSTED, and every wait and stream is gone when it ends."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc

from service.rpc.paging import encode_token
from testkit.inproc import InProcessApi

SERVICE = "/jericommerce.loyalty.v1.CustomerService/"
CUSTOMERS = [f"cus-{i}" for i in range(3)]


def seed(api: InProcessApi) -> int:
    events = []
    for i in range(30):
        customer = CUSTOMERS[i % 3]
        events.append(
            ("Balance changed", customer, {"id": f"e{i}", "properties": {"amount": i}})
        )
    head = api.append(events)
    deadline = time.monotonic() + 10
    while api.applied.position < head and time.monotonic() < deadline:
        time.sleep(0.02)
    return head


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApi]:
    with InProcessApi(tmp_path_factory.mktemp("grpc-hardening")) as a:
        seed(a)
        yield a


@pytest.fixture(scope="module")
def channel(api: InProcessApi) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(api.target) as ch:
        yield ch


def failure(
    call: Callable[[], Any],
) -> tuple[grpc.StatusCode, str, error_details_pb2.ErrorInfo]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    err: Any = raised.value
    info = error_details_pb2.ErrorInfo()
    status = rpc_status.from_call(err)
    assert status is not None, "every failure carries a google.rpc.Status"
    assert any(d.Unpack(info) for d in status.details)
    return err.code(), err.details(), info


# --- page tokens -----------------------------------------------------------

# (method, request message fields besides the token, filters the server binds)
LIST_METHODS = [
    ("ListCustomers", cpb.ListCustomersRequest, {}, {"tier": ""}),
    (
        "ListCustomerEvents",
        cpb.ListCustomerEventsRequest,
        {"customer_id": "cus-1"},
        {"customer_id": "cus-1"},
    ),
    (
        "ListBalanceChanges",
        cpb.ListBalanceChangesRequest,
        {"customer_id": "cus-1"},
        {"customer_id": "cus-1"},
    ),
]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def with_raw_token(message: Any, token: bytes) -> bytes:
    """The request's bytes with `token` as its page_token field, as any
    client could send them: not necessarily UTF-8, as a proto string must be."""
    number = message.DESCRIPTOR.fields_by_name["page_token"].number
    field = _varint(number << 3 | 2) + _varint(len(token)) + token
    return message.SerializeToString() + field


def assert_invalid_or_ok(channel: grpc.Channel, method: str, body: bytes) -> None:
    call = channel.unary_unary(SERVICE + method)  # bytes in, bytes out
    try:
        call(body, timeout=10)
    except grpc.RpcError as e:
        code = e.code()  # type: ignore[attr-defined]
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, code, e.details())  # type: ignore[attr-defined]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)

property_settings = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@property_settings
@given(method=st.sampled_from(LIST_METHODS), token=st.binary(max_size=200))
def test_arbitrary_bytes_as_page_token(
    channel: grpc.Channel, method: Any, token: bytes
) -> None:
    name, message, fields, _ = method
    assert_invalid_or_ok(channel, name, with_raw_token(message(**fields), token))


@property_settings
@given(method=st.sampled_from(LIST_METHODS), value=json_values)
def test_arbitrary_json_as_page_token(
    channel: grpc.Channel, method: Any, value: Any
) -> None:
    name, message, fields, filters = method
    raw = json.dumps(value).encode()
    for token in (
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        # The right envelope and filter digest, any cursor inside.
        encode_token(value, filters),
        encode_token([value, "e1"], filters),
        encode_token([0, value], filters),
    ):
        assert_invalid_or_ok(
            channel, name, message(page_token=token, **fields).SerializeToString()
        )


@pytest.mark.parametrize(
    "cursor", [2**70, -1, "\ud800", "a\x00b", True, None, [1], {"x": 1}, 1.5]
)
@pytest.mark.parametrize("method", LIST_METHODS, ids=lambda m: m[0])
def test_forged_cursors_are_invalid_argument(
    channel: grpc.Channel, method: Any, cursor: Any
) -> None:
    name, message, fields, filters = method
    for c in (cursor, [cursor, "e1"], [0, cursor]):
        body = message(page_token=encode_token(c, filters), **fields)
        assert_invalid_or_ok(channel, name, body.SerializeToString())
    deep = base64.urlsafe_b64encode(b"[" * 100_000).decode()
    assert_invalid_or_ok(
        channel, name, message(page_token=deep, **fields).SerializeToString()
    )


def test_issued_tokens_still_page_through(channel: grpc.Channel) -> None:
    stub = cgrpc.CustomerServiceStub(channel)
    seen, token = [], ""
    while True:
        page = stub.ListCustomerEvents(
            cpb.ListCustomerEventsRequest(
                customer_id="cus-1", page_size=3, page_token=token
            ),
            timeout=5,
        )
        seen += [e.id for e in page.events]
        if not (token := page.next_page_token):
            break
    assert len(seen) == 10 and len(set(seen)) == 10
    ledger, token = [], ""
    while True:
        lpage = stub.ListBalanceChanges(
            cpb.ListBalanceChangesRequest(
                customer_id="cus-1", page_size=4, page_token=token
            ),
            timeout=5,
        )
        ledger += list(lpage.balance_changes)
        if not (token := lpage.next_page_token):
            break
    assert len(ledger) == 10
    names, token = [], ""
    while True:
        cpage = stub.ListCustomers(
            cpb.ListCustomersRequest(page_size=1, page_token=token), timeout=5
        )
        names += [c.customer_id for c in cpage.customers]
        if not (token := cpage.next_page_token):
            break
    assert names == CUSTOMERS


def test_bytes_that_are_not_the_message_are_invalid_argument(
    channel: grpc.Channel,
) -> None:
    for body in (b"\x0a\x02\xff\xfe", b"\xff\xff\xff", b"\x0a\x10short"):
        code, _, info = failure(
            lambda b=body: channel.unary_unary(SERVICE + "GetCustomer")(b, timeout=5)
        )
        assert (
            code == grpc.StatusCode.INVALID_ARGUMENT
            and info.metadata["field"] == "request"
        )
    stream = channel.unary_stream("/jericommerce.loyalty.v1.EventService/StreamEvents")
    code, _, _ = failure(lambda: list(stream(b"\xff\xff", timeout=5)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


# --- errors name the problem, not the input --------------------------------


def test_not_found_does_not_echo_the_request(channel: grpc.Channel) -> None:
    stub = cgrpc.CustomerServiceStub(channel)
    secret = "someone.private@example.com"
    code, message, info = failure(
        lambda: stub.GetCustomer(cpb.GetCustomerRequest(customer_id=secret), timeout=5)
    )
    assert code == grpc.StatusCode.NOT_FOUND and secret not in message
    assert secret not in str(info)
    huge = "x" * 3_000_000  # would not fit in the answer's headers if echoed
    code, message, _ = failure(
        lambda: stub.GetCustomer(
            cpb.GetCustomerRequest(customer_id=huge[:900_000]), timeout=5
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND and len(message) < 100
    missing = [f"ghost-{i}@example.com" for i in range(7)]
    code, message, info = failure(
        lambda: stub.BatchGetCustomers(
            cpb.BatchGetCustomersRequest(customer_ids=["cus-0", *missing]), timeout=5
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert not any(m in message for m in missing) and "ghost" not in str(info)
    assert info.metadata["missing"] == "7"
    code, message, _ = failure(
        lambda: stub.ListCustomerEvents(
            cpb.ListCustomerEventsRequest(customer_id=secret), timeout=5
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND and secret not in message
    code, message, _ = failure(
        lambda: stub.GetCustomer(
            cpb.GetCustomerRequest(customer_id="cus-0", min_position=987654321987),
            timeout=0.3,
        )
    )
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "987654321987" not in message
    code, _, _ = failure(
        lambda: stub.GetCustomer(
            cpb.GetCustomerRequest(customer_id="a\x00b"), timeout=5
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


# --- the head, and waits that end ------------------------------------------


def test_caught_up_reports_the_real_head_beyond_it(
    api: InProcessApi, channel: grpc.Channel
) -> None:
    stub = egrpc.EventServiceStub(channel)
    head = stub.GetHeadPosition(epb.GetHeadPositionRequest(), timeout=5).position
    stream = stub.StreamEvents(
        epb.StreamEventsRequest(after_position=1_000_000_000, follow=True), timeout=10
    )
    first = next(stream)
    stream.cancel()
    assert first.WhichOneof("item") == "caught_up"
    assert first.caught_up.head_position == head == api.container.events.head()


def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_timed_out_reads_and_cancelled_followers_leave_nothing(
    api: InProcessApi, channel: grpc.Channel
) -> None:
    customers = cgrpc.CustomerServiceStub(channel)
    events = egrpc.EventServiceStub(channel)
    futures = [
        customers.GetCustomer.future(
            cpb.GetCustomerRequest(customer_id="cus-0", min_position=10**15),
            timeout=0.05,
        )
        for _ in range(1000)
    ]
    for f in futures:
        assert f.exception() is not None
        assert f.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    followers = [
        events.StreamEvents(
            epb.StreamEventsRequest(after_position=10**12 + i, follow=True), timeout=60
        )
        for i in range(200)
    ]
    for f in followers:
        assert next(f).WhichOneof("item") == "caught_up"
    wait_until(lambda: api.head.waiting >= 200)
    for f in followers:
        f.cancel()
    wait_until(lambda: api.head.waiting == 0 and api.applied.waiting == 0)
    gauge = api.container.metrics.grpc_streams_open
    wait_until(lambda: gauge._value.get() == 0)


# --- limits ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "reason", "limit"),
    [
        (
            {"GRPC_MAX_STREAMS": "10", "GRPC_MAX_STREAMS_PER_PEER": "3"},
            "TOO_MANY_STREAMS_FROM_PEER",
            3,
        ),
        (
            {"GRPC_MAX_STREAMS": "2", "GRPC_MAX_STREAMS_PER_PEER": "5"},
            "TOO_MANY_STREAMS",
            2,
        ),
    ],
)
def test_streams_beyond_the_peer_and_process_limits_are_resource_exhausted(
    tmp_path: Path, env: dict[str, str], reason: str, limit: int
) -> None:
    with InProcessApi(tmp_path, **env) as api, grpc.insecure_channel(api.target) as ch:
        stub = egrpc.EventServiceStub(ch)
        request = epb.StreamEventsRequest(after_position=0, follow=True)
        held = [stub.StreamEvents(request, timeout=30) for _ in range(limit)]
        for h in held:
            assert next(h).WhichOneof("item") == "caught_up"
        code, _, info = failure(lambda: next(stub.StreamEvents(request, timeout=5)))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.reason == reason and info.metadata["limit"] == str(limit)
        held.pop().cancel()
        gauge = api.container.metrics.grpc_streams_open
        wait_until(lambda: gauge._value.get() < limit)
        again = stub.StreamEvents(request, timeout=30)
        assert next(again).WhichOneof("item") == "caught_up"
        for h in [*held, again]:
            h.cancel()


def test_calls_beyond_the_limit_are_resource_exhausted(tmp_path: Path) -> None:
    with (
        InProcessApi(tmp_path, GRPC_MAX_CALLS="3") as api,
        grpc.insecure_channel(api.target) as ch,
    ):
        stub = cgrpc.CustomerServiceStub(ch)
        waiting = [
            stub.GetCustomer.future(
                cpb.GetCustomerRequest(customer_id="x", min_position=10**15), timeout=20
            )
            for _ in range(3)
        ]
        wait_until(lambda: api.applied.waiting == 3)
        code, _, info = failure(
            lambda: stub.GetCustomer(cpb.GetCustomerRequest(customer_id="x"), timeout=5)
        )
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.reason == "TOO_MANY_CALLS" and info.metadata["limit"] == "3"
        for w in waiting:
            w.cancel()
        wait_until(lambda: api.applied.waiting == 0)
        code, _, _ = failure(
            lambda: stub.GetCustomer(cpb.GetCustomerRequest(customer_id="x"), timeout=5)
        )
        assert code == grpc.StatusCode.NOT_FOUND
