"""Who may run the admin operations (erase, export, rebuild).

With mTLS on (GRPC_TLS_CLIENT_CA), only client certificates named in
ADMIN_CLIENTS, by subject CN or by a subject alternative name, may; unset
means nobody may. Without client certificates there is no one to tell
apart: every caller may, and every call is logged with its peer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from service import logs
from service.errors import PermissionDenied
from service.rpc.context import Context

log = logs.get(__name__)


class AdminPolicy:
    def __init__(self, *, mtls: bool, admins: Iterable[str]) -> None:
        self.mtls = mtls
        self.admins = frozenset(admins)

    def check(self, context: Context, operation: str) -> str:
        """The caller's name if they may run `operation`; else PermissionDenied."""
        if not self.mtls:
            peer = context.peer()
            log.info("admin operation without mTLS", operation=operation, peer=peer)
            return peer
        names = _names(context.auth_context())
        allowed = names & self.admins
        if not allowed:
            log.warning(
                "admin operation refused",
                operation=operation,
                peer=context.peer(),
                names=sorted(names),
            )
            raise PermissionDenied(
                f"{operation} is an admin operation: the client certificate is "
                "not listed in ADMIN_CLIENTS"
            )
        caller = sorted(allowed)[0]
        log.info("admin operation", operation=operation, caller=caller)
        return caller


def _names(auth: Mapping[str, Iterable[bytes]]) -> set[str]:
    names = set()
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth.get(key, []):
            names.add(value.decode("utf-8", "replace"))
    return names
