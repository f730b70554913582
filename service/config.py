"""Typed settings, read once from the environment.

Each field of `Settings` declares its setting in one place: the environment
variable, the parser, the default, how the README shows the default, and
what it means (`setting(...)`). `from_environ` parses with those
declarations and `reference()` renders the README's configuration table
from them (`loyalty config`), so the documentation cannot drift from the code.
To add a setting, add one field in the order the table should show it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from service.ingest import DEFAULT_MAX_ID_LENGTH

V = TypeVar("V")


class ConfigError(Exception):
    """A setting is missing or malformed; the message says what to set."""


def _secrets(name: str, raw: str) -> tuple[bytes, ...]:
    return tuple(s.strip().encode() for s in raw.split(",") if s.strip())


def _text(name: str, raw: str) -> str:
    return raw


def _path(name: str, raw: str) -> Path:
    return Path(raw)


def _names(name: str, raw: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in raw.split(",") if n.strip())


def _file(name: str, raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(f"{name} names {raw!r}, which is not a readable file")
    return path


def _database_url(name: str, raw: str) -> str:
    if not raw.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{name} must look like postgresql://user:pass@host:port/db")
    return raw


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value < 86400:
        raise ConfigError(f"{name} must be between 0 and 86400 seconds, got {raw}")
    return value


def _port(name: str, raw: str) -> int:
    # 0 is allowed: tests bind an ephemeral port and read it back.
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 <= value <= 65535:
        raise ConfigError(f"{name} must be between 0 and 65535, got {value}")
    return value


def _count(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more, got {value}")
    return value


def _linger_ms(name: str, raw: str) -> int:
    # Past a second it would outwait the worker's poll and the callers of
    # `min_position` (their deadlines are seconds): a mistake, not a choice.
    value = _count(name, raw)
    if value > 1000:
        raise ConfigError(f"{name} must be at most 1000 milliseconds, got {value}")
    return value


def _level(name: str, raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{name} must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


@dataclass(frozen=True)
class Setting:
    """How one field of Settings is read and documented."""

    env: str
    parse: Callable[[str, str], Any]  # (variable name, raw text) -> value
    meaning: str
    shown_default: str


def setting(
    env: str,
    parse: Callable[[str, str], V],
    default: V,
    meaning: str,
    *,
    shown: str | None = None,
    secret: bool = False,
) -> V:
    """A field of Settings read from `env` by `parse`. `shown`: the default
    as the README writes it (by default the value itself, or "unset");
    `secret`: left out of repr."""
    if shown is None:
        shown = "unset" if default is None else f"`{_show(default)}`"
    declared = Setting(env, parse, meaning, shown)
    field: V = dataclasses.field(
        default=default, repr=not secret, metadata={"setting": declared}
    )
    return field


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    webhook_secrets: tuple[bytes, ...] = setting(
        "WEBHOOK_SECRET",
        _secrets,
        (),
        "the signing secret; several, comma-separated, during a rotation "
        "(any one verifies)",
        shown="none: the ingress refuses to start",
        secret=True,
    )
    http_host: str = setting("HTTP_HOST", _text, "127.0.0.1", "webhook ingress address")
    http_port: int = setting("HTTP_PORT", _port, 8080, "webhook ingress port")
    grpc_host: str = setting("GRPC_HOST", _text, "127.0.0.1", "gRPC API address")
    grpc_port: int = setting("GRPC_PORT", _port, 50051, "gRPC API port")
    data_dir: Path = setting(
        "DATA_DIR",
        _path,
        Path("./var"),
        "where the embedded SQLite store lives",
        shown="`./var`",
    )
    database_url: str | None = setting(
        "DATABASE_URL",
        _database_url,
        None,
        "`postgresql://user:pass@host:port/db`: use PostgreSQL instead of SQLite "
        "(`?schema=NAME` for a schema other than `public`)",
        secret=True,  # may hold a password
    )
    max_body_bytes: int = setting(
        "MAX_BODY_BYTES",
        _positive_int,
        1_048_576,
        "largest webhook body accepted (413 above)",
    )
    max_header_bytes: int = setting(
        "MAX_HEADER_BYTES",
        _positive_int,
        8192,
        "largest request head (request line and headers) accepted",
    )
    max_id_length: int = setting(
        "MAX_ID_LENGTH",
        _positive_int,
        DEFAULT_MAX_ID_LENGTH,
        "longest webhook `id` and `customerId` accepted, in characters "
        "(400 and quarantined above)",
    )
    request_timeout: float = setting(
        "REQUEST_TIMEOUT",
        _seconds,
        15.0,
        "seconds a client may take to send a whole request (slow senders are cut off)",
    )
    keep_alive_timeout: float = setting(
        "KEEP_ALIVE_TIMEOUT",
        _seconds,
        15.0,
        "seconds an idle keep-alive connection is kept open",
    )
    grpc_tls_cert: Path | None = setting(
        "GRPC_TLS_CERT",
        _file,
        None,
        "PEM certificate chain: serve gRPC over TLS (with `GRPC_TLS_KEY`)",
        shown="unset (plaintext)",
    )
    grpc_tls_key: Path | None = setting(
        "GRPC_TLS_KEY", _file, None, "PEM private key for `GRPC_TLS_CERT`"
    )
    grpc_tls_client_ca: Path | None = setting(
        "GRPC_TLS_CLIENT_CA",
        _file,
        None,
        "PEM CA bundle: require client certificates it signed (mTLS)",
    )
    admin_clients: tuple[str, ...] = setting(
        "ADMIN_CLIENTS",
        _names,
        (),
        "comma-separated client certificate names (subject CN or a SAN) allowed "
        "the admin operations (erase, export, rebuild) when mTLS is on; without "
        "mTLS those operations are open to every caller and logged",
        shown="unset: with mTLS, no client may",
    )
    master_key_file: Path | None = setting(
        "MASTER_KEY_FILE",
        _path,
        None,
        "file holding the 32-byte master key in base64 (`openssl rand -base64 "
        "32`); it wraps every customer's data key; refused if others can write "
        "it, warned about if they can read it ([docs/privacy.md]"
        "(docs/privacy.md))",
        shown="`DATA_DIR/master.key`, created on the first start of a new store "
        "only (SQLite only; required with `DATABASE_URL`)",
    )
    projection_linger_ms: int | None = setting(
        "PROJECTION_LINGER_MS",
        _linger_ms,
        None,
        "under load, the milliseconds the projection worker waits after a "
        "wake-up that applied events before it starts the next, so that one "
        "carries several commits: fewer round trips an event, at most this "
        "much longer until a webhook is visible (`min_position` waits too); "
        "`0`: every commit at once; at most `1000`",
        shown="`20` on PostgreSQL, `0` on SQLite",
    )
    quarantine_retention_days: int = setting(
        "QUARANTINE_RETENTION_DAYS",
        _positive_int,
        30,
        "days a quarantined request is kept before it is purged",
    )
    grpc_max_calls: int = setting(
        "GRPC_MAX_CALLS",
        _positive_int,
        1000,
        "unary gRPC calls one API process serves at once (those waiting for "
        "`min_position` included); beyond it `RESOURCE_EXHAUSTED`",
    )
    grpc_max_streams: int = setting(
        "GRPC_MAX_STREAMS",
        _positive_int,
        1000,
        "server streams (`StreamEvents`, health `Watch`) one API process keeps "
        "open at once; beyond it `RESOURCE_EXHAUSTED`",
    )
    grpc_max_streams_per_peer: int = setting(
        "GRPC_MAX_STREAMS_PER_PEER",
        _positive_int,
        250,
        "of those, how many one client may hold (by client certificate name "
        "under mTLS, else by IP address; behind a proxy set it to "
        "`GRPC_MAX_STREAMS`)",
    )
    metrics_port: int | None = setting(
        "METRICS_PORT",
        _port,
        None,
        "`/healthz`, `/readyz` and `/metrics` on this port (at `HTTP_HOST`) for "
        "processes without the ingress (`loyalty worker`, `loyalty api`, the "
        "projector of `loyalty run --split`, the store's writer process of "
        "`loyalty ingress --writer`); the ingress serves them on `HTTP_PORT`",
    )
    access_log_limit: int = setting(
        "ACCESS_LOG_LIMIT",
        _count,
        100,
        "access-log lines a second, per process, for webhooks and for gRPC calls "
        "each; requests beyond it are counted in the next line's `suppressed`; "
        "`0` turns the access log off (refused webhooks are logged regardless)",
    )
    log_level: str = setting(
        "LOG_LEVEL",
        _level,
        "INFO",
        "DEBUG, INFO, WARNING or ERROR; logs are JSON lines on stderr",
    )

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, *, require_secret: bool = True
    ) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f, s in declared():
            raw = env.get(s.env, "").strip()
            if raw:
                values[f.name] = s.parse(s.env, raw)
        settings = cls(**values)
        if require_secret and not settings.webhook_secrets:
            raise ConfigError(
                "WEBHOOK_SECRET is missing, and has no default: set it to the "
                "JeriCommerce signing secret (several, comma-separated, in a rotation)"
            )
        if (settings.grpc_tls_cert is None) != (settings.grpc_tls_key is None):
            raise ConfigError("GRPC_TLS_CERT and GRPC_TLS_KEY must be set together")
        if settings.grpc_tls_client_ca is not None and settings.grpc_tls_cert is None:
            raise ConfigError("GRPC_TLS_CLIENT_CA needs GRPC_TLS_CERT and GRPC_TLS_KEY")
        return settings


def declared() -> list[tuple[dataclasses.Field[Any], Setting]]:
    """Every field of Settings with its declaration, in the table's order."""
    return [(f, f.metadata["setting"]) for f in dataclasses.fields(Settings)]


def reference() -> str:
    """The configuration table, as the README shows it."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    rows += [f"| `{s.env}` | {s.meaning} | {s.shown_default} |" for _, s in declared()]
    return "\n".join(rows)
