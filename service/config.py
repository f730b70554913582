"""Typed settings, read once from the environment.

`SETTINGS` is the single description of every variable: `from_environ`
parses with it and `reference()` renders the README's configuration table
from it, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.ingest import DEFAULT_MAX_ID_LENGTH


class ConfigError(Exception):
    """A setting is missing or malformed; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    webhook_secrets: tuple[bytes, ...] = field(repr=False)
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    data_dir: Path = Path("./var")
    database_url: str | None = field(default=None, repr=False)  # may hold a password
    max_body_bytes: int = 1_048_576
    max_header_bytes: int = 8192
    max_id_length: int = DEFAULT_MAX_ID_LENGTH
    request_timeout: float = 15.0
    keep_alive_timeout: float = 15.0
    grpc_tls_cert: Path | None = None
    grpc_tls_key: Path | None = None
    grpc_tls_client_ca: Path | None = None
    master_key_file: Path | None = None
    admin_clients: tuple[str, ...] = ()
    quarantine_retention_days: int = 30
    log_level: str = "INFO"
    metrics_port: int | None = None
    access_log_limit: int = 100
    grpc_max_calls: int = 1000
    grpc_max_streams: int = 1000
    grpc_max_streams_per_peer: int = 250

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, *, require_secret: bool = True
    ) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for s in SETTINGS:
            raw = env.get(s.env, "").strip()
            values[s.field] = s.parse(s.env, raw) if raw else s.default
        if require_secret and not values["webhook_secrets"]:
            raise ConfigError(
                "WEBHOOK_SECRET is missing, and has no default: set it to the "
                "JeriCommerce signing secret (several, comma-separated, in a rotation)"
            )
        if (values["grpc_tls_cert"] is None) != (values["grpc_tls_key"] is None):
            raise ConfigError("GRPC_TLS_CERT and GRPC_TLS_KEY must be set together")
        if values["grpc_tls_client_ca"] is not None and values["grpc_tls_cert"] is None:
            raise ConfigError("GRPC_TLS_CLIENT_CA needs GRPC_TLS_CERT and GRPC_TLS_KEY")
        return cls(**values)


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


def _level(name: str, raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{name} must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


@dataclass(frozen=True)
class Setting:
    env: str
    field: str
    parse: Callable[[str, str], Any]
    default: Any
    shown_default: str
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "WEBHOOK_SECRET",
        "webhook_secrets",
        _secrets,
        (),
        "none: the ingress refuses to start",
        "the signing secret; several, comma-separated, during a rotation "
        "(any one verifies)",
    ),
    Setting(
        "HTTP_HOST",
        "http_host",
        _text,
        "127.0.0.1",
        "`127.0.0.1`",
        "webhook ingress address",
    ),
    Setting("HTTP_PORT", "http_port", _port, 8080, "`8080`", "webhook ingress port"),
    Setting(
        "GRPC_HOST", "grpc_host", _text, "127.0.0.1", "`127.0.0.1`", "gRPC API address"
    ),
    Setting("GRPC_PORT", "grpc_port", _port, 50051, "`50051`", "gRPC API port"),
    Setting(
        "DATA_DIR",
        "data_dir",
        _path,
        Path("./var"),
        "`./var`",
        "where the embedded SQLite store lives",
    ),
    Setting(
        "DATABASE_URL",
        "database_url",
        _database_url,
        None,
        "unset",
        "`postgresql://user:pass@host:port/db`: use PostgreSQL instead of SQLite "
        "(`?schema=NAME` for a schema other than `public`)",
    ),
    Setting(
        "MAX_BODY_BYTES",
        "max_body_bytes",
        _positive_int,
        1_048_576,
        "`1048576`",
        "largest webhook body accepted (413 above)",
    ),
    Setting(
        "MAX_HEADER_BYTES",
        "max_header_bytes",
        _positive_int,
        8192,
        "`8192`",
        "largest request head (request line and headers) accepted",
    ),
    Setting(
        "MAX_ID_LENGTH",
        "max_id_length",
        _positive_int,
        DEFAULT_MAX_ID_LENGTH,
        f"`{DEFAULT_MAX_ID_LENGTH}`",
        "longest webhook `id` and `customerId` accepted, in characters "
        "(400 and quarantined above)",
    ),
    Setting(
        "REQUEST_TIMEOUT",
        "request_timeout",
        _seconds,
        15.0,
        "`15`",
        "seconds a client may take to send a whole request (slow senders are cut off)",
    ),
    Setting(
        "KEEP_ALIVE_TIMEOUT",
        "keep_alive_timeout",
        _seconds,
        15.0,
        "`15`",
        "seconds an idle keep-alive connection is kept open",
    ),
    Setting(
        "GRPC_TLS_CERT",
        "grpc_tls_cert",
        _file,
        None,
        "unset (plaintext)",
        "PEM certificate chain: serve gRPC over TLS (with `GRPC_TLS_KEY`)",
    ),
    Setting(
        "GRPC_TLS_KEY",
        "grpc_tls_key",
        _file,
        None,
        "unset",
        "PEM private key for `GRPC_TLS_CERT`",
    ),
    Setting(
        "GRPC_TLS_CLIENT_CA",
        "grpc_tls_client_ca",
        _file,
        None,
        "unset",
        "PEM CA bundle: require client certificates it signed (mTLS)",
    ),
    Setting(
        "ADMIN_CLIENTS",
        "admin_clients",
        _names,
        (),
        "unset: with mTLS, no client may",
        "comma-separated client certificate names (subject CN or a SAN) allowed "
        "the admin operations (erase, export, rebuild) when mTLS is on; without "
        "mTLS those operations are open to every caller and logged",
    ),
    Setting(
        "MASTER_KEY_FILE",
        "master_key_file",
        _path,
        None,
        "`DATA_DIR/master.key`, created on first start (SQLite only; required "
        "with `DATABASE_URL`)",
        "file holding the 32-byte master key in base64 (`openssl rand -base64 "
        "32`); it wraps every customer's data key ([docs/privacy.md]"
        "(docs/privacy.md))",
    ),
    Setting(
        "QUARANTINE_RETENTION_DAYS",
        "quarantine_retention_days",
        _positive_int,
        30,
        "`30`",
        "days a quarantined request is kept before it is purged",
    ),
    Setting(
        "GRPC_MAX_CALLS",
        "grpc_max_calls",
        _positive_int,
        1000,
        "`1000`",
        "unary gRPC calls one API process serves at once (those waiting for "
        "`min_position` included); beyond it `RESOURCE_EXHAUSTED`",
    ),
    Setting(
        "GRPC_MAX_STREAMS",
        "grpc_max_streams",
        _positive_int,
        1000,
        "`1000`",
        "server streams (`StreamEvents`, health `Watch`) one API process keeps "
        "open at once; beyond it `RESOURCE_EXHAUSTED`",
    ),
    Setting(
        "GRPC_MAX_STREAMS_PER_PEER",
        "grpc_max_streams_per_peer",
        _positive_int,
        250,
        "`250`",
        "of those, how many one client may hold (by client certificate name "
        "under mTLS, else by IP address; behind a proxy set it to "
        "`GRPC_MAX_STREAMS`)",
    ),
    Setting(
        "METRICS_PORT",
        "metrics_port",
        _port,
        None,
        "unset",
        "`/healthz`, `/readyz` and `/metrics` on this port (at `HTTP_HOST`) for "
        "processes without the ingress (`loyalty worker`, `loyalty api`); the "
        "ingress serves them on `HTTP_PORT`",
    ),
    Setting(
        "ACCESS_LOG_LIMIT",
        "access_log_limit",
        _count,
        100,
        "`100`",
        "access-log lines a second, per process, for webhooks and for gRPC calls "
        "each; requests beyond it are counted in the next line's `suppressed`; "
        "`0` turns the access log off (refused webhooks are logged regardless)",
    ),
    Setting(
        "LOG_LEVEL",
        "log_level",
        _level,
        "INFO",
        "`INFO`",
        "DEBUG, INFO, WARNING or ERROR; logs are JSON lines on stderr",
    ),
)


def reference() -> str:
    """The configuration table, as the README shows it."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    rows += [f"| `{s.env}` | {s.meaning} | {s.shown_default} |" for s in SETTINGS]
    return "\n".join(rows)
