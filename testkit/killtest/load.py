"""The kill test's load: a sender that retries as JeriCommerce does, and a
killer that SIGKILLs and restarts the service at random moments."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx

from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.traffic import Webhook
from testkit.webhooks import WEBHOOK_PATH


@dataclass
class SenderStats:
    deliveries: int = 0  # planned deliveries (events plus duplicate copies)
    attempts: int = 0  # HTTP requests made
    ok: int = 0  # 2xx answers
    accepted: int = 0
    duplicate: int = 0
    connection_errors: int = 0
    timeouts: int = 0
    unavailable: int = 0  # 503
    unexpected: Counter[str] = field(default_factory=Counter)  # other answers
    retries: int = 0
    gave_up: int = 0
    in_flight: int = 0
    answers: dict[str, list[tuple[str, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )


@dataclass
class KillStats:
    kills: int = 0
    under_load: int = 0
    in_flight_at_kills: int = 0
    downtime: float = 0.0
    restart_failures: list[str] = field(default_factory=list)


async def send_all(
    svc: ServiceProcess,
    deliveries: list[Webhook],
    connections: int,
    rnd: random.Random,
    stats: SenderStats,
    max_attempts: int,
) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Webhook, int] | None] = asyncio.Queue()
    for d in deliveries:
        queue.put_nowait((d, 1))
    stats.deliveries = len(deliveries)
    remaining = len(deliveries)
    finished = asyncio.Event()
    # One client per connection: a sender's connection, and far less client
    # CPU than one pool of many connections (httpx's pool is the bottleneck).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(5.0, connect=2.0)

    def settle() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            finished.set()

    async def worker() -> None:
        async with httpx.AsyncClient(
            base_url=svc.url, limits=limits, timeout=timeout
        ) as client:
            await deliver(client)

    async def deliver(client: httpx.AsyncClient) -> None:
        while (item := await queue.get()) is not None:
            d, attempt = item
            stats.attempts += 1
            stats.in_flight += 1
            status: int | None = None
            try:
                r = await client.post(
                    WEBHOOK_PATH, content=d.body, headers=headers(d.body, d.type_name)
                )
                status = r.status_code
            except httpx.TimeoutException:
                stats.timeouts += 1
            except httpx.TransportError:
                stats.connection_errors += 1
            finally:
                stats.in_flight -= 1
            if status is not None and 200 <= status < 300:
                answer = json.loads(r.content)
                stats.ok += 1
                stats.answers[d.id].append((answer["status"], answer["position"]))
                if answer["status"] == "accepted":
                    stats.accepted += 1
                else:
                    stats.duplicate += 1
                settle()
                continue
            if status == 503:
                stats.unavailable += 1
            elif status is not None:
                stats.unexpected[f"{status} {r.text[:80]}"] += 1
            if attempt >= max_attempts:
                stats.gave_up += 1
                settle()
                continue
            stats.retries += 1
            delay = min(0.05 * 2 ** min(attempt - 1, 5), 1.0) * rnd.uniform(0.5, 1.5)
            loop.call_later(delay, queue.put_nowait, (d, attempt + 1))

    workers = [loop.create_task(worker()) for _ in range(connections)]
    await finished.wait()
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)


async def kill_repeatedly(
    svc: ServiceProcess,
    kills: int,
    rnd: random.Random,
    sender: SenderStats,
    stats: KillStats,
    load_done: asyncio.Event,
) -> None:
    """Kill at random moments: after a random share of the deliveries has been
    answered, plus a random delay; restart at once each time."""
    total = max(1, sender.deliveries)
    thresholds = sorted(rnd.uniform(0.02, 0.95) * total for _ in range(kills))
    for threshold in thresholds:
        while sender.ok + sender.gave_up < threshold and not load_done.is_set():
            await asyncio.sleep(0.002)
        await asyncio.sleep(rnd.uniform(0, 0.25))
        stats.in_flight_at_kills += sender.in_flight
        if not load_done.is_set():
            stats.under_load += 1
        down = time.monotonic()
        await asyncio.to_thread(svc.kill)
        stats.kills += 1
        try:
            await asyncio.to_thread(svc.start, 60.0)
        except RuntimeError as e:
            stats.restart_failures.append(str(e)[-2000:])
            return
        stats.downtime += time.monotonic() - down
