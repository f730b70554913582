"""The descriptors of the generated protobuf modules, how the contract
tests of the gRPC API compare a message's fields with the documented shape,
and a message as a client sees it (its set fields, after the wire)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

try:
    from jericommerce.loyalty.v1 import (
        balance_change_pb2,
        customer_pb2,
        customer_service_pb2,
        customer_service_pb2_grpc,
        event_pb2,
        event_service_pb2,
        event_service_pb2_grpc,
        privacy_service_pb2,
        privacy_service_pb2_grpc,
        projection_service_pb2,
        projection_service_pb2_grpc,
    )
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError(
        "generated protobuf modules `jericommerce.loyalty.v1.*` are not "
        "importable: run `scripts/gen_proto.sh gen/python` and put gen/python "
        f"on sys.path (the Makefile does both). Cause: {exc}"
    ) from exc

# The generated modules, for the contract tests to import from here.
__all__ = [
    "ALL_MODULES",
    "balance_change_pb2",
    "customer_pb2",
    "customer_service_pb2",
    "customer_service_pb2_grpc",
    "event_pb2",
    "event_service_pb2",
    "event_service_pb2_grpc",
    "privacy_service_pb2",
    "privacy_service_pb2_grpc",
    "projection_service_pb2",
    "projection_service_pb2_grpc",
]

PACKAGE = "jericommerce.loyalty.v1"

ALL_MODULES = [
    balance_change_pb2,
    customer_pb2,
    customer_service_pb2,
    event_pb2,
    event_service_pb2,
    projection_service_pb2,
]

T = FieldDescriptor
INT64 = T.TYPE_INT64
INT32 = T.TYPE_INT32
STRING = T.TYPE_STRING
BOOL = T.TYPE_BOOL
DOUBLE = T.TYPE_DOUBLE
ENUM = T.TYPE_ENUM
MESSAGE = T.TYPE_MESSAGE

TIMESTAMP = "google.protobuf.Timestamp"
STRUCT = "google.protobuf.Struct"


def fields_of(message: Descriptor) -> dict[str, FieldDescriptor]:
    return dict(message.fields_by_name)


def message_of(module: object, name: str) -> Descriptor:
    return module.DESCRIPTOR.message_types_by_name[name]  # type: ignore[attr-defined]


def service_of(module: object, name: str) -> ServiceDescriptor:
    return module.DESCRIPTOR.services_by_name[name]  # type: ignore[attr-defined]


def enum_of(module: object, name: str) -> EnumDescriptor:
    return module.DESCRIPTOR.enum_types_by_name[name]  # type: ignore[attr-defined]


def type_name(field: FieldDescriptor) -> str:
    if field.type == MESSAGE and field.message_type is not None:
        return field.message_type.full_name
    if field.type == ENUM and field.enum_type is not None:
        return field.enum_type.full_name
    return f"scalar:{field.type}"


def assert_shape(message: Descriptor, expected: dict[str, object]) -> None:
    """Each expected field exists with the expected type.

    A value is a FieldDescriptor.TYPE_* constant for scalars, or the full name
    of a message or enum type; wrap it in a list for a repeated field.
    """
    fields = fields_of(message)
    missing = sorted(set(expected) - set(fields))
    assert not missing, f"{message.full_name} lacks fields {missing}"
    for name, want in expected.items():
        field = fields[name]
        repeated = isinstance(want, list)
        assert field.is_repeated == repeated, (
            f"{message.full_name}.{name}: repeated should be {repeated}"
        )
        want_type = want[0] if isinstance(want, list) else want
        got = field.type if isinstance(want_type, int) else type_name(field)
        assert got == want_type, f"{message.full_name}.{name}: {got} != {want_type}"


def qualified(name: str) -> str:
    return f"{PACKAGE}.{name}"


def ts(when: datetime) -> Timestamp:
    """A Timestamp made the library's way, independent of service.rpc.convert."""
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def set_fields(message: Message) -> set[str]:
    return {field.name for field, _ in message.ListFields()}


def all_fields(message: Message) -> set[str]:
    return {field.name for field in message.DESCRIPTOR.fields}


def roundtrip(message: Message) -> Message:
    """Serialize and parse back, as a client would."""
    return type(message).FromString(message.SerializeToString())
