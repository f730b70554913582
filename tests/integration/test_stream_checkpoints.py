"""StreamEvents checkpoints on filtered streams, on both stores: how often
they come, that resuming after one misses and repeats nothing, and that a
live filtered stream reports non-matching traffic within a second."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jericommerce.loyalty.v1 import event_pb2
from jericommerce.loyalty.v1 import event_service_pb2 as epb

from service.backends.sqlite.store import open_sqlite
from service.eventstore import EventStore
from service.ingest import Envelope, parse_envelope
from service.positions import PositionWatch
from service.rpc import events as rpc_events
from service.rpc.events import CHECKPOINT_EVERY, EventServicer
from testkit.keys import master_key

SCAN = event_pb2.EVENT_TYPE_CUSTOMER_SCANNED
REDEEMED = event_pb2.EVENT_TYPE_REWARD_REDEEMED


def envelope(event_id: str, kind: str, customer: str = "c1") -> Envelope:
    body = {
        "id": event_id,
        "customerId": customer,
        "createdAt": "2026-03-08T12:00:00Z",
        "properties": {"rewardId": "r1"},
    }
    return parse_envelope(json.dumps(body).encode(), kind)


class NoContext:
    """The servicer only touches its context to abort, which these tests
    never make it do."""

    async def abort(self, *args: Any) -> None:  # pragma: no cover
        raise AssertionError(args)


async def items(
    servicer: EventServicer, **request: Any
) -> AsyncIterator[epb.StreamEventsResponse]:
    stream = servicer.StreamEvents(epb.StreamEventsRequest(**request), NoContext())
    async for item in stream:
        yield item


async def collect(
    servicer: EventServicer, **request: Any
) -> list[tuple[str, int, str]]:
    """(kind, position, event id or "") of every item of a finite stream."""
    out = []
    async for item in items(servicer, **request):
        kind = item.WhichOneof("item")
        assert kind is not None
        if kind == "event":
            out.append((kind, item.event.position, item.event.id))
        else:
            out.append((kind, getattr(item, kind).position, ""))
    return out


class CheckpointContract:
    store: EventStore

    def append(self, envelopes: list[Envelope]) -> None:
        for i in range(0, len(envelopes), 500):
            self.store.append(envelopes[i : i + 500])

    def run(self, scenario: Any) -> None:
        async def main() -> None:
            head = PositionWatch(asyncio.get_running_loop())
            head.advance(self.store.head())
            await scenario(EventServicer(self.store, head), head)

        asyncio.run(main())

    def test_a_long_run_of_non_matching_events_is_checkpointed(self) -> None:
        noise = [envelope(f"n{i}", "Customer scanned") for i in range(2500)]
        self.append([*noise, envelope("hit", "Reward redeemed")])

        async def scenario(servicer: EventServicer, head: PositionWatch) -> None:
            got = await collect(servicer, event_types=[REDEEMED])
            kinds = [kind for kind, _, _ in got]
            assert kinds == ["checkpoint", "checkpoint", "event"]
            positions = [0] + [p for _, p, _ in got]
            assert positions == sorted(set(positions))  # strictly increasing
            # At most CHECKPOINT_EVERY events scanned between two items.
            assert all(
                b - a <= CHECKPOINT_EVERY for a, b in itertools.pairwise(positions)
            )
            assert got[-1][2] == "hit"
            # Unfiltered: every event, and no checkpoint.
            every = await collect(servicer)
            assert {kind for kind, _, _ in every} == {"event"}
            assert len(every) == 2501

        self.run(scenario)

    def test_a_filtered_stream_ends_with_the_position_it_scanned_to(self) -> None:
        self.append(
            [envelope("hit", "Reward redeemed"), envelope("n", "Customer scanned")]
        )

        async def scenario(servicer: EventServicer, head: PositionWatch) -> None:
            got = await collect(servicer, event_types=[REDEEMED])
            assert [kind for kind, _, _ in got] == ["event", "checkpoint"]
            assert got[-1][1] == self.store.head()
            # Resuming there: nothing more, not even a checkpoint.
            assert (
                await collect(
                    servicer, event_types=[REDEEMED], after_position=got[-1][1]
                )
                == []
            )

        self.run(scenario)

    @pytest.mark.parametrize(
        "request_",
        [
            {"event_types": [REDEEMED]},
            {"customer_id": "c2"},
            {"event_types": [REDEEMED, SCAN], "customer_id": "c2"},
        ],
        ids=["type", "customer", "both"],
    )
    def test_resuming_after_any_item_misses_and_repeats_nothing(
        self, request_: dict[str, Any]
    ) -> None:
        # Matches right after where checkpoints fall (a checkpoint comes
        # CHECKPOINT_EVERY positions after the last item), so a checkpoint one
        # position too far would skip one; and a burst, and quiet stretches.
        hits = {0, 1001, 2002, 2003, 2004, 2005, 3006}
        other_c2 = {500, 2500}  # c2, not redeemed: customer filter only
        envelopes = []
        for i in range(3600):
            if i in hits:
                envelopes.append(envelope(f"e{i}", "Reward redeemed", "c2"))
            elif i in other_c2:
                envelopes.append(envelope(f"e{i}", "Tier changed", "c2"))
            else:
                kind = "Customer scanned" if i % 2 else "Tier changed"
                envelopes.append(envelope(f"e{i}", kind, "c1"))
        self.append(envelopes)

        async def scenario(servicer: EventServicer, head: PositionWatch) -> None:
            full = await collect(servicer, **request_)
            matching = [(p, i) for kind, p, i in full if kind == "event"]
            assert matching and any(kind == "checkpoint" for kind, _, _ in full)
            # Cut the stream after each item, as a consumer killed there would,
            # and resume after that item's position.
            for cut in range(len(full)):
                saved = full[cut][1]
                rest = await collect(servicer, after_position=saved, **request_)
                before = [(p, i) for kind, p, i in full[: cut + 1] if kind == "event"]
                after = [(p, i) for kind, p, i in rest if kind == "event"]
                assert before + after == matching, cut

        self.run(scenario)

    def test_a_live_filtered_stream_reports_non_matching_events_within_a_second(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # No periodic re-check to hide behind: only the head's advance wakes it.
        monkeypatch.setattr(rpc_events, "FOLLOW_POLL_SECONDS", 30.0)
        self.append([envelope("old", "Customer scanned")])

        async def scenario(servicer: EventServicer, head: PositionWatch) -> None:
            stream = items(servicer, event_types=[REDEEMED], follow=True)
            first = await anext(stream)
            assert first.WhichOneof("item") == "caught_up"
            for burst in range(3):
                stored_at = time.monotonic()
                noise = [
                    envelope(f"n{burst}-{i}", "Customer scanned") for i in range(20)
                ]
                await asyncio.to_thread(self.append, noise)
                head.advance(self.store.head())
                item = await asyncio.wait_for(anext(stream), 5)
                assert item.WhichOneof("item") == "checkpoint"
                assert item.checkpoint.position == self.store.head()
                assert time.monotonic() - stored_at < 1.0
            await asyncio.to_thread(self.append, [envelope("hit", "Reward redeemed")])
            head.advance(self.store.head())
            item = await asyncio.wait_for(anext(stream), 5)
            assert item.WhichOneof("item") == "event" and item.event.id == "hit"
            await stream.aclose()

        self.run(scenario)

    def test_events_from_a_writer_it_is_not_told_about_are_checkpointed_too(
        self,
    ) -> None:
        async def scenario(servicer: EventServicer, head: PositionWatch) -> None:
            stream = items(servicer, customer_id="nobody", follow=True)
            assert (await anext(stream)).WhichOneof("item") == "caught_up"
            # Just after the stream began to wait, another process writes: only
            # the stream's own re-check can find it.
            await asyncio.sleep(0.05)
            stored_at = time.monotonic()
            noise = [envelope(f"n{i}", "Customer scanned") for i in range(5)]
            await asyncio.to_thread(self.append, noise)  # no head.advance
            item = await asyncio.wait_for(anext(stream), 5)
            assert item.WhichOneof("item") == "checkpoint"
            assert item.checkpoint.position == self.store.head()
            # Within a second, with room for a loaded machine.
            assert time.monotonic() - stored_at < 0.9
            await stream.aclose()

        self.run(scenario)

    def test_a_type_filtered_stream_carries_erasures(self) -> None:
        self.append([envelope("hit", "Reward redeemed", "c2")])
        erased_at = datetime(2026, 3, 9, tzinfo=UTC)
        at = self.store.append_erasure("c2", erased_at, lambda cursor: None)
        self.store.append_erasure("c3", erased_at, lambda cursor: None)

        async def scenario(servicer: EventServicer, head: PositionWatch) -> None:
            got = await collect(servicer, event_types=[REDEEMED])
            assert [kind for kind, _, _ in got] == [
                "event",
                "customer_erased",
                "customer_erased",
            ]
            assert got[1][1] == at
            # With a customer filter, only that customer's erasure.
            mine = await collect(servicer, event_types=[REDEEMED], customer_id="c2")
            assert [kind for kind, _, _ in mine] == [
                "event",
                "customer_erased",
                "checkpoint",
            ]

        self.run(scenario)


class TestSQLiteCheckpoints(CheckpointContract):
    @pytest.fixture(autouse=True)
    def _store(self, tmp_path: Path) -> Iterator[None]:
        self.store, _, factory = open_sqlite(tmp_path)
        yield
        factory.close()


class TestPostgresCheckpoints(CheckpointContract):
    @pytest.fixture(autouse=True)
    def _store(self, pg_url: str) -> Iterator[None]:
        from service.backends.postgres.store import open_postgres

        self.store, _, factory = open_postgres(pg_url, master_key())
        yield
        factory.close()


del CheckpointContract
