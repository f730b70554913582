"""The one table from internal errors to gRPC status codes.

Every answer that is not OK carries a google.rpc.Status with an ErrorInfo
(reason, domain), so callers in any language can branch on the reason.
A bug is INTERNAL, never UNKNOWN.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from projections.stores.sql import StalePosition
from service import logs
from service.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PositionNotReached,
    ResourceExhausted,
)
from service.eventstore import STORE_ERRORS, StoreUnavailable
from service.keyring import KeysChanged, WrongMasterKey
from service.rpc.context import Context

DOMAIN = "loyalty.jericommerce.com"
log = logs.get(__name__)

# (exception types, code, ErrorInfo reason), first match wins.
TABLE: list[tuple[tuple[type[BaseException], ...], grpc.StatusCode, str]] = [
    ((InvalidArgument,), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    ((NotFound,), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    ((PermissionDenied,), grpc.StatusCode.PERMISSION_DENIED, "NOT_AN_ADMIN"),
    ((PositionNotReached,), grpc.StatusCode.DEADLINE_EXCEEDED, "POSITION_NOT_REACHED"),
    # The reason is the exception's own (which limit), see rich_status.
    ((ResourceExhausted,), grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"),
    # A process left on the old master key after a rotation: the store is
    # fine, this server cannot unwrap some keys until it is restarted.
    ((WrongMasterKey,), grpc.StatusCode.UNAVAILABLE, "MASTER_KEY_ROTATED"),
    (
        # KeysChanged: an erasure kept destroying keys under a write (retried
        # inside, so rare); StalePosition: another applier took over.
        (StoreUnavailable, KeysChanged, StalePosition, *STORE_ERRORS),
        grpc.StatusCode.UNAVAILABLE,
        "STORE_UNAVAILABLE",
    ),
]
# The message of an UNAVAILABLE answer, by reason (never the error's own
# text: a driver's may quote the statement it ran).
UNAVAILABLE_MESSAGES = {
    "MASTER_KEY_ROTATED": (
        "this server's master key is no longer the store's; retry with "
        "back-off (operators: restart it with the current MASTER_KEY_FILE)"
    ),
    "STORE_UNAVAILABLE": "the store is unavailable; retry with back-off",
}


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str, str]:
    """(code, reason, message) for an exception raised while serving."""
    for types, code, reason in TABLE:
        if isinstance(error, types):
            message = (
                str(error)
                if code != grpc.StatusCode.UNAVAILABLE
                else UNAVAILABLE_MESSAGES[reason]
            )
            return code, reason, message
    return grpc.StatusCode.INTERNAL, "INTERNAL", "internal error"


def rich_status(error: BaseException) -> grpc.Status:
    code, reason, message = status_for(error)
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    if isinstance(error, InvalidArgument):
        info.metadata["field"] = error.field
    elif isinstance(error, NotFound):
        info.metadata["missing"] = str(error.count)
    elif isinstance(error, ResourceExhausted):
        info.reason = error.reason
        info.metadata["limit"] = str(error.limit)
    return _status(code, info, message)


def _status(
    code: grpc.StatusCode, info: error_details_pb2.ErrorInfo, message: str
) -> grpc.Status:
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(
        code=getattr(code_pb2, code.name), message=message, details=[detail]
    )
    return rpc_status.to_status(status)


def deadline_passed(context: Context) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


async def _abort(context: Context, error: BaseException) -> None:
    if deadline_passed(context):
        # The caller has its DEADLINE_EXCEEDED already and nothing more can
        # reach it: whatever failed on the way is not a fault of ours.
        log.info("deadline passed before the answer", error=type(error).__name__)
        await context.abort_with_status(
            _status(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                error_details_pb2.ErrorInfo(reason="DEADLINE_EXCEEDED", domain=DOMAIN),
                "deadline exceeded",
            )
        )
        return
    status = rich_status(error)
    if status.code is grpc.StatusCode.INTERNAL:
        log.exception("internal error while serving", exc_info=error)
    await context.abort_with_status(status)


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def unary(method: F) -> F:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: Context) -> Any:
        try:
            return await method(self, request, context)
        except Exception as e:
            await _abort(context, e)

    return wrapper  # type: ignore[return-value]


def streaming(
    method: Callable[..., AsyncIterator[Any]],
) -> Callable[..., AsyncIterator[Any]]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: Context) -> AsyncIterator[Any]:
        try:
            async for item in method(self, request, context):
                yield item
        except Exception as e:
            await _abort(context, e)

    return wrapper
