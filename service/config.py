"""Typed settings, read once from the environment (CONTRACT section 2)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


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
    database_url: str | None = None
    max_body_bytes: int = 1_048_576

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, *, require_secret: bool = True
    ) -> Settings:
        env = os.environ if environ is None else environ
        raw_secret = env.get("WEBHOOK_SECRET", "")
        secrets = tuple(s.strip().encode() for s in raw_secret.split(",") if s.strip())
        if require_secret and not secrets:
            raise ConfigError(
                "WEBHOOK_SECRET is missing, and has no default: set it to the "
                "JeriCommerce signing secret (several, comma-separated, in a rotation)"
            )
        database_url = env.get("DATABASE_URL", "").strip() or None
        if database_url and not database_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ConfigError(
                "DATABASE_URL must look like postgresql://user:pass@host:port/db"
            )
        return cls(
            webhook_secrets=secrets,
            http_host=env.get("HTTP_HOST", "127.0.0.1"),
            http_port=_port(env, "HTTP_PORT", 8080),
            grpc_host=env.get("GRPC_HOST", "127.0.0.1"),
            grpc_port=_port(env, "GRPC_PORT", 50051),
            data_dir=Path(env.get("DATA_DIR", "./var")),
            database_url=database_url,
            max_body_bytes=_positive_int(env, "MAX_BODY_BYTES", 1_048_576),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    # 0 is allowed: tests bind an ephemeral port and read it back.
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 <= value <= 65535:
        raise ConfigError(f"{name} must be between 0 and 65535, got {value}")
    return value
