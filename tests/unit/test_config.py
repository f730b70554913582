from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, Settings


def test_defaults() -> None:
    s = Settings.from_environ({"WEBHOOK_SECRET": "a"})
    assert s.webhook_secrets == (b"a",)
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8080)
    assert (s.grpc_host, s.grpc_port) == ("127.0.0.1", 50051)
    assert s.data_dir == Path("./var")
    assert s.database_url is None and s.backend == "sqlite"
    assert s.max_body_bytes == 1_048_576


def test_missing_secret_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET is missing"):
        Settings.from_environ({})
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        Settings.from_environ({"WEBHOOK_SECRET": " , "})


def test_rotation_secrets_split_on_commas() -> None:
    s = Settings.from_environ({"WEBHOOK_SECRET": "new, old"})
    assert s.webhook_secrets == (b"new", b"old")


def test_secret_not_in_repr() -> None:
    assert "hunter2" not in repr(Settings.from_environ({"WEBHOOK_SECRET": "hunter2"}))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("HTTP_PORT", "http"),
        ("GRPC_PORT", "70000"),
        ("MAX_BODY_BYTES", "0"),
        ("MAX_BODY_BYTES", "-5"),
        ("DATABASE_URL", "mysql://x"),
    ],
)
def test_bad_values_fail_loudly(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings.from_environ({"WEBHOOK_SECRET": "a", key: value})


def test_postgres_url_selects_backend() -> None:
    s = Settings.from_environ(
        {"WEBHOOK_SECRET": "a", "DATABASE_URL": "postgresql://u@h:5432/db"}
    )
    assert s.backend == "postgres"


def test_readme_configuration_table_is_generated_from_the_settings() -> None:
    from service.config import reference

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("<!-- config:start -->\n")[1].split("\n<!-- config:end -->")[0]
    assert table == reference()


def test_tls_settings_go_together(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="together"):
        Settings.from_environ({"WEBHOOK_SECRET": "a", "GRPC_TLS_CERT": str(cert)})
    with pytest.raises(ConfigError, match="not a readable file"):
        Settings.from_environ({"WEBHOOK_SECRET": "a", "GRPC_TLS_CERT": "/nope"})


def test_database_url_not_in_repr() -> None:
    s = Settings.from_environ(
        {"WEBHOOK_SECRET": "a", "DATABASE_URL": "postgresql://u:pw123@h/db"}
    )
    assert "pw123" not in repr(s)
