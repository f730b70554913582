"""A rebuild whose events are read by a process of its own
(service/rebuildreader.py) against the same rebuild in one process: equal
read models, on every backend, and a reader that fails or dies fails the
rebuild before the switch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from projections.events import RecordedEvent
from projections.rebuild import RebuildProgress, rebuild
from projections.worker import ProjectionWorker
from service import rebuildreader
from service.bootstrap import Container, build
from service.config import Settings
from service.ingest import parse_envelope
from service.rebuildreader import ReaderFailed, process_reader
from service.rebuilds import Rebuilds
from testkit.keys import master_key_file
from testkit.privacy import points
from testkit.rebuilds import DyingBackend, FailingBackend
from testkit.traffic.mix import webhooks

ERASED = ("cus-0000003", "cus-0000008", "cus-0000011")


def read_models(c: Container) -> dict[str, Any]:
    """Everything the current generation holds that readers can see."""
    m = c.models
    states = dict(m.iter_states())
    return {
        "states": states,
        "answers": m.get_answers(sorted(states)),
        "ledgers": {cid: m.ledger(cid, after=(-1, ""), limit=10_000) for cid in states},
        "history": {cid: m.history(cid, after=0, limit=10_000) for cid in states},
        "tiers": {
            t: m.list_customers(after="", limit=10_000, tier=t)
            for t in ("Gold", "Silver", "Bronze")
        },
        "dead": m.dead_letters(limit=10_000),
        "position": m.applied_position(),
    }


class ReaderContract:
    container: Container

    def fill(self) -> None:
        """Every event type, unknown types and poison (testkit.traffic), an
        erasure the live worker saw and one it did not, and a new record
        after an erasure."""
        events = self.container.events
        hooks = [
            parse_envelope(w.body, w.type_name) for w in webhooks(900, 30, tag="rr")
        ]
        events.append(hooks[:600])
        privacy = self.container.privacy()
        for cid in ERASED[:2]:
            erasure = privacy.erase(cid)
            ProjectionWorker(events, self.container.models).run_once()
            privacy.finish(erasure)
        events.append(hooks[600:])
        privacy.erase(ERASED[2])  # not projected before the rebuild
        later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        events.append([points("rr-again", ERASED[0], 5, later)])
        ProjectionWorker(events, self.container.models).run_once()

    def rebuilt_in_one_process(self) -> dict[str, Any]:
        rebuild(self.container.events, self.container.models, batch_size=128)
        return read_models(self.container)

    def test_two_processes_build_what_one_builds(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The reader process makes the final answers however few, from
        # states sent in several chunks.
        monkeypatch.setattr(rebuildreader, "HELPER_MIN", 1)
        monkeypatch.setattr(rebuildreader, "ANSWER_CHUNK", 7)
        # A short first batch, so the rebuild starts folding sooner.
        monkeypatch.setattr(rebuildreader, "FIRST_BATCH", 50)
        self.fill()
        expected = self.rebuilt_in_one_process()
        assert len(expected["states"]) > 20
        # Erased, and erased then back with a new record.
        assert not set(ERASED[1:]) & set(expected["states"])
        assert b'"rr-again"' in expected["states"][ERASED[0]]
        c = self.container
        reports: list[RebuildProgress] = []
        shared, sizes = [], []
        with process_reader(c.backend, c.events) as source:
            answer_many, read = source.answer_many, source.read

            def measured(after: int, limit: int) -> list[RecordedEvent]:
                events = read(after, limit)
                sizes.append(len(events))
                return events

            def counted(*args: Any) -> tuple[list[bytes], list[bytes]]:
                shared.append(len(args[0]))
                return answer_many(*args)

            source.answer_many = counted  # type: ignore[method-assign]
            source.read = measured  # type: ignore[method-assign]
            done = rebuild(source, c.models, batch_size=128, on_progress=reports.append)
        assert shared == [len(expected["states"])]
        assert sizes[:3] == [50, 128, 128] and sizes[-1] == 0
        assert done.finished and done.done == c.events.head()
        assert len(reports) > 3 and reports[-1] == done
        assert read_models(c) == expected

    def test_two_processes_keeping_few_states_in_memory(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # States evicted and loaded back mid-rebuild; the final flush, with
        # the reader's answers, updates rows instead of inserting them.
        monkeypatch.setattr(rebuildreader, "HELPER_MIN", 1)
        self.fill()
        expected = self.rebuilt_in_one_process()
        c = self.container
        with process_reader(c.backend, c.events) as source:
            rebuild(source, c.models, batch_size=64, keep_states=7)
        assert read_models(c) == expected

    def test_a_service_package_in_the_working_directory_is_not_the_readers(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The reader is `python -m service.rebuildreader`: run from a
        # directory holding another `service` package, it must still import
        # ours (an operator's checkout of something else, say).
        other = tmp_path / "elsewhere" / "service"
        other.mkdir(parents=True)
        (other / "__init__.py").write_text('raise SystemExit("not our service")\n')
        self.fill()
        expected = self.rebuilt_in_one_process()
        monkeypatch.chdir(other.parent)
        c = self.container
        with process_reader(c.backend, c.events) as source:
            rebuild(source, c.models, batch_size=128)
        assert read_models(c) == expected

    def test_a_reader_that_dies_fails_the_rebuild_before_the_switch(self) -> None:
        self.fill()
        c = self.container
        before, g = read_models(c), c.models.current_generation(refresh=True)
        dying = DyingBackend(c.backend, 2)
        with (
            pytest.raises(ReaderFailed, match="exited unexpectedly"),
            process_reader(dying, c.events) as source,
        ):
            rebuild(source, c.models, batch_size=128)
        assert c.models.current_generation(refresh=True) == g
        assert read_models(c) == before
        # The next rebuild starts afresh and completes.
        with process_reader(c.backend, c.events) as source:
            rebuild(source, c.models, batch_size=128)
        assert read_models(c) == before

    def test_rebuilds_reports_a_reader_that_cannot_open_the_store(self) -> None:
        self.fill()
        c = self.container
        g = c.models.current_generation(refresh=True)
        rebuilds = Rebuilds(c.events, c.models, backend=FailingBackend(c.backend, 0))
        assert rebuilds.start()[0]
        assert rebuilds._thread is not None
        rebuilds._thread.join(60)
        assert rebuilds.last_error is not None
        assert "OSError: the store is not there" in rebuilds.last_error
        assert c.models.current_generation(refresh=True) == g

    def test_rebuilds_with_a_reader_process_switches(self) -> None:
        self.fill()
        c = self.container
        g = c.models.current_generation(refresh=True)
        before = read_models(c)
        rebuilds = Rebuilds(c.events, c.models, backend=c.backend)
        assert rebuilds.start()[0]
        assert rebuilds._thread is not None
        rebuilds._thread.join(60)
        assert rebuilds.last_error is None
        assert c.models.current_generation(refresh=True) == g + 1
        assert read_models(c) == before

    def test_a_reader_never_read_from_is_gone_when_closed(self) -> None:
        # As when a rebuild fails before its first read.
        with process_reader(self.container.backend, self.container.events) as r:
            assert r.alive
        assert not r.alive

    def test_a_stopped_rebuild_stops_its_reader(self) -> None:
        self.fill()
        c = self.container
        g = c.models.current_generation(refresh=True)
        stop = threading.Event()
        with (
            pytest.raises(InterruptedError),
            process_reader(c.backend, c.events) as source,
        ):
            rebuild(
                source,
                c.models,
                batch_size=16,
                on_progress=lambda p: stop.set(),
                stop=stop,
            )
        assert not source.alive
        assert c.models.current_generation(refresh=True) == g
        assert c.models.pending_generation() == 0


class TestSqliteReader(ReaderContract):
    @pytest.fixture(autouse=True)
    def _container(self, tmp_path: Path) -> Iterator[None]:
        settings = Settings.from_environ(
            {"DATA_DIR": str(tmp_path / "data")}, require_secret=False
        )
        self.container = build(settings)
        yield
        self.container.close()


@pytest.mark.postgres
class TestPostgresReader(ReaderContract):
    @pytest.fixture(autouse=True)
    def _container(self, pg_url: str) -> Iterator[None]:
        settings = Settings.from_environ(
            {"DATABASE_URL": pg_url, "MASTER_KEY_FILE": str(master_key_file())},
            require_secret=False,
        )
        self.container = build(settings)
        yield
        self.container.close()
