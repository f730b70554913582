"""The backend is chosen in one place (service/backends/__init__.py):
nothing else in the service asks which database it runs on."""

from __future__ import annotations

from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"
# Where the setting is read (config.py) and where it is acted on (backends/).
ALLOWED = {SERVICE / "config.py", SERVICE / "backends"}


def test_only_the_backends_look_at_database_url() -> None:
    askers = sorted(
        str(path.relative_to(SERVICE))
        for path in SERVICE.rglob("*.py")
        if not any(path == a or a in path.parents for a in ALLOWED)
        and "database_url" in path.read_text()
    )
    assert askers == []
