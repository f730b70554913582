"""docs/ says what every known event type is and does: a new type cannot be
added to the folds without a row in both tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from projections.events import EventType

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("doc", ["docs/webhooks.md", "docs/read-models.md"])
def test_every_event_type_has_a_row(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    missing = [t.value for t in EventType if f"| `{t.value}` |" not in text]
    assert not missing, f"{doc} has no table row for {missing}"
