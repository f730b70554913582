"""The SQLite event store inserts a group commit's batch with one statement,
and every event still gets its own notification id, in batch order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from service.backends.sqlite.store import open_sqlite
from testkit.keys import master_key
from testkit.webhooks import envelope


def test_one_insert_statement_per_batch_with_each_event_at_its_position(
    tmp_path: Path,
) -> None:
    store, _quarantine, factory = open_sqlite(tmp_path, master_key())
    try:
        store.append([envelope("first")])
        statements: list[str] = []
        real_execute = store.recorder._insert_rows.__func__  # type: ignore[attr-defined]

        def counting(recorder, c, stored):  # type: ignore[no-untyped-def]
            c.sqlite_cursor.connection.set_trace_callback(statements.append)
            try:
                return real_execute(recorder, c, stored)
            finally:
                c.sqlite_cursor.connection.set_trace_callback(None)

        type(store.recorder)._insert_rows = counting  # type: ignore[method-assign]
        try:
            batch = [envelope(f"e{i}", customer=f"c{i % 7}") for i in range(300)]
            answers = store.append(batch)
        finally:
            type(store.recorder)._insert_rows = real_execute  # type: ignore[method-assign]
        inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
        assert len(inserts) == 1
        positions = [a.position for a in answers]
        assert positions == list(range(2, 302))
        by_position = {e.position: e.id for e in store.read(1, 1000)}
        assert [by_position[p] for p in positions] == [f"e{i}" for i in range(300)]
        # An id stored before is answered at its first position.
        again = store.append([envelope("e5"), envelope("new")])
        assert [(a.status, a.position) for a in again] == [
            ("duplicate", 7),
            ("accepted", 302),
        ]
    finally:
        factory.close()
    with sqlite3.connect(tmp_path / "events.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM stored_events").fetchone() == (302,)
