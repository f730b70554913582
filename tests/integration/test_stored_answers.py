"""Stored answers: the read models keep each customer's encoded answer beside
its state, made by the encoder they were opened with, on every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from projections.customer.codec import decode_state
from projections.customer.state import CustomerState
from projections.events import EventType as T
from projections.rebuild import rebuild
from projections.stores.answers import Answers
from projections.stores.sql import SqlReadModels
from projections.worker import ProjectionWorker
from service.rpc.answers import ANSWERS
from testkit.sources import ListSource, history


def tagged(tag: bytes) -> Answers:
    """An encoder whose answers say which encoder and which state made them."""

    def encode(state: CustomerState) -> bytes:
        return tag + b":%s:%d" % (state.customer_id.encode(), state.position)

    return Answers(7 if tag == b"v7" else 8, encode)


class AnswersContract:
    open: Callable[[Answers], SqlReadModels]

    def answers_match_states(self, models: SqlReadModels, encode: Callable) -> int:
        states = dict(models.iter_states())
        assert states
        for cid, blob in states.items():
            assert models.get_answer(cid) == (encode(decode_state(blob)),)
        return len(states)

    def test_the_worker_and_a_rebuild_store_the_answer_of_every_state(self) -> None:
        models = self.open(ANSWERS)
        source = ListSource()
        history(source)
        ProjectionWorker(source, models, batch_size=29).run_once()
        n = self.answers_match_states(models, ANSWERS.encode)
        rebuild(source, models, batch_size=41, keep_states=3)  # evictions too
        assert self.answers_match_states(models, ANSWERS.encode) == n
        page = models.list_answers(after="", limit=1000, tier=None)
        assert [a for _, a in page] == [models.get_answer(c)[0] for c, _ in page]

    def test_a_new_encoding_version_makes_every_answer_again(self) -> None:
        models = self.open(tagged(b"v7"))
        source = ListSource()
        history(source)
        ProjectionWorker(source, models).run_once()
        self.answers_match_states(models, tagged(b"v7").encode)
        models.db.close()
        models = self.open(tagged(b"v8"))  # a build whose conversion changed
        self.answers_match_states(models, tagged(b"v8").encode)
        assert models.generations._meta("answers_version") == 8

    def test_an_erased_customer_leaves_no_answer(self) -> None:
        models = self.open(ANSWERS)
        source = ListSource()
        source.add(T.CUSTOMER_CREATED, id="a1", customer_id="ana", email="a@x.com")
        source.add(T.CUSTOMER_CREATED, id="b1", customer_id="bob", email="b@x.com")
        ProjectionWorker(source, models).run_once()
        assert models.get_answer("ana") and models.lookup_answer("a@x.com")
        models.erase_customer("ana", before=models.applied_position() + 1)
        assert models.get_answer("ana") is None
        assert models.lookup_answer("a@x.com") is None
        assert models.get_answers(["ana", "bob"]).keys() == {"bob"}


class TestSqliteAnswers(AnswersContract):
    @pytest.fixture(autouse=True)
    def _models(self, tmp_path: Path) -> Iterator[None]:
        from projections.stores.sqlite import open_sqlite_read_models

        opened: list[SqlReadModels] = []

        def open_(answers: Answers) -> SqlReadModels:
            opened.append(open_sqlite_read_models(tmp_path / "rm.sqlite", answers))
            return opened[-1]

        self.open = open_
        yield
        for m in opened:
            m.db.close()

    def test_a_store_from_before_stored_answers_gets_them(self, tmp_path: Path) -> None:
        models = self.open(tagged(b"v7"))
        source = ListSource()
        history(source)
        ProjectionWorker(source, models).run_once()
        # As such a store was: no answer column, and the schema at version 1.
        with models.db.write() as c:
            c.execute("ALTER TABLE customers_1 DROP COLUMN answer")
            c.execute("DELETE FROM projection_meta WHERE key = 'answers_version'")
            c.execute("UPDATE schema_version SET version = 1")
        models.db.close()
        self.answers_match_states(self.open(ANSWERS), ANSWERS.encode)


class TestPostgresAnswers(AnswersContract):
    @pytest.fixture(autouse=True)
    def _models(self, pg_url: str) -> Iterator[None]:
        from projections.stores.postgres import open_postgres_read_models

        opened: list[SqlReadModels] = []

        def open_(answers: Answers) -> SqlReadModels:
            opened.append(open_postgres_read_models(pg_url, answers))
            return opened[-1]

        self.open = open_
        yield
        for m in opened:
            m.db.close()
