"""How the demo sends its deliveries, and how it checks every answer and
every read model against what it sent."""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
from jericommerce.loyalty.v1 import customer_pb2

from service.ingest import EVENT_TYPE_HEADER, SIGNATURE_HEADER
from testkit.signing import sign
from testkit.traffic.stories import Delivery, Story


class DemoError(Exception):
    """Something the service should not have done; the demo exits 1."""


async def deliver(
    url: str, secret: bytes, rounds: list[list[Delivery]], concurrency: int
) -> None:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        gate = asyncio.Semaphore(concurrency)
        total = sum(len(r) for r in rounds)
        done = 0
        show = total > 1 and sys.stdout.isatty()

        async def one(d: Delivery) -> None:
            headers = {
                "content-type": "application/json",
                "user-agent": "JeriCommerce-Webhooks/1.0 (loyalty demo)",
                SIGNATURE_HEADER: sign(d.body, secret, d.encoding),
            }
            if d.event_type is not None:
                headers[EVENT_TYPE_HEADER] = d.event_type
            nonlocal done
            async with gate:
                try:
                    r = await client.post(url, content=d.body, headers=headers)
                except httpx.HTTPError as e:
                    r = None
                    d.answer = {"error": f"{type(e).__name__}: {e}"}
            done += 1
            if show and (done % 100 == 0 or done == total):
                end = "\n" if done == total else ""
                print(f"\r  {done}/{total} sent", end=end, flush=True)
            if r is None:
                return
            d.status = r.status_code
            try:
                d.answer = r.json()
            except ValueError:
                d.answer = {"error": r.text[:200]}

        for deliveries in rounds:
            await asyncio.gather(*(one(d) for d in deliveries))


def check_answers(deliveries: list[Delivery]) -> None:
    """Every answer as docs/webhooks.md says, or DemoError naming the first few."""
    if any(d.status == 401 for d in deliveries):
        raise DemoError(
            "the service answered 401: it runs with another WEBHOOK_SECRET. "
            "Run the demo with the service's secret in WEBHOOK_SECRET."
        )
    problems = []
    by_id: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        expected = 400 if d.event_id is None else 200
        if d.status != expected:
            problems.append(
                f"{d.event_type or '(no type)'} {d.event_id or '(invalid)'}: "
                f"expected {expected}, got {d.status} {d.answer}"
            )
        elif d.event_id is not None:
            by_id[d.event_id].append(d)
    for event_id, copies in by_id.items():
        statuses = sorted(c.answer.get("status", "?") for c in copies)
        positions = {c.answer.get("position") for c in copies}
        if statuses != ["accepted"] + ["duplicate"] * (len(copies) - 1):
            problems.append(f"event {event_id}: answered {statuses}")
        if len(positions) != 1 or not isinstance(next(iter(positions)), int):
            problems.append(
                f"event {event_id}: positions {sorted(map(str, positions))}"
            )
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise DemoError(f"{len(problems)} unexpected answer(s):\n  {shown}{more}")


def check_models(stories: list[Story], customers: dict[str, Any]) -> None:
    problems = []
    for s in stories:
        c = customers[s.customer_id]
        want = {
            "points_balance": s.balance,
            "tier": s.tier,
            "event_count": len(s.deliveries),
            "wallet_pass": s.wallet,
            "refunded": s.refunded,
        }
        got = {
            "points_balance": c.points_balance,
            "tier": c.tier.current,
            "event_count": c.event_count,
            "wallet_pass": customer_pb2.WalletPassStatus.Name(
                c.wallet_pass.status
            ).removeprefix("WALLET_PASS_STATUS_"),
            "refunded": sum(r.refunded for r in c.redeemed_rewards),
        }
        for key in want:
            if want[key] != got[key]:
                problems.append(
                    f"{s.customer_id}: {key} is {got[key]!r}, expected {want[key]!r}"
                )
    if problems:
        raise DemoError(
            "read models differ from what was sent:\n  " + "\n  ".join(problems[:10])
        )


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
