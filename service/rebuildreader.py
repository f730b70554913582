"""A rebuild's reading in a process of its own, so a rebuild uses two cores.

Reading, decrypting and decoding the log is more than half of a rebuild's
CPU (docs/performance.md), and it does not depend on the folding: a reader
process does it one batch ahead while the rebuild folds and writes the
previous one. The reader sends each batch as one MessagePack message
(msgspec: a C call each way, where pickle took ~2 us an event to write)
through a pipe from a thread that blocks while the pipe is full, so at most
a few batches wait (back-pressure, bounded memory). The body's JSON is
parsed on the folding side, which balances the two processes.

Once it has read everything the reader process would sit idle while the
rebuild makes every customer's answer for its final flush, serially: so it
makes them (`ProcessReader.answer_many`), from the encoded states, sent in
chunks as the rebuild encodes them, while the rebuild merges its staged
rows.

What the reader sends is MessagePack (batches, answers, an error's text);
what it is told is pickled (the backend to open, where to start; the
answers' encoder, by reference, with the states to answer).

The reader is a fresh interpreter (`python -m service.rebuildreader FD`)
on one end of a socket pair, not a multiprocessing child: a spawned child
first imports the parent's main module, and for `loyalty rebuild` (the
console script: the whole CLI) or the bench's P3 that is more than the
reader's own imports, a few tenths of a second the rebuild waits for its
first batch.

`ProcessReader` is an EventSource: `projections.rebuild.rebuild` reads from
it as from the event store, so the result is the same, batch by batch. A
reader that fails or dies fails the rebuild before the switch.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing.connection import Connection
from typing import Any, NoReturn

import msgspec

from projections.customer.codec import decode_state
from projections.customer.state import CustomerState
from projections.events import RecordedEvent
from projections.projector import EventSource
from service.backends.base import Backend
from service.eventstore import EventStore
from service.storedevents import Opened, event_of, open_rows

# A batch on the wire: the opened rows' fields (storedevents.Opened), and
# (index, created's and received's UTC offsets in seconds) for each of them
# whose times are not in UTC. MessagePack keeps an aware time's instant, not
# its offset, and a stored header keeps the offset it was given.
Shifted = tuple[int, int, int]
_ENCODE = msgspec.msgpack.Encoder().encode
# A str instead of the expected message: the reader's error.
BATCH = msgspec.msgpack.Decoder(tuple[list[Opened], list[Shifted]] | str)
_ANSWERS = msgspec.msgpack.Decoder(list[bytes] | str)
# Batches the reader process may have read and not yet sent.
AHEAD = 2
# How long a stopped reader gets to exit before it is killed, seconds.
JOIN_TIMEOUT = 5.0
# Fewer answers than this are all made here: not worth a round trip.
HELPER_MIN = 1000
# States encoded and sent to the reader process at a time: it starts on the
# first while the rest are encoded.
ANSWER_CHUNK = 5000
# The first batch is at most this many events, whatever the batch size: the
# rebuild waits for it with nothing else to do (a full batch of 20,000 took
# the reader ~0.25 s), and once it folds, the reader stays ahead (it reads an
# event faster than the rebuild folds one).
FIRST_BATCH = 1000


class ReaderFailed(RuntimeError):
    """The reader process reported an error or exited before the end."""


def pack(opened: list[Opened]) -> bytes:
    shifted = [
        (i, _offset(o[5]), _offset(o[6]))
        for i, o in enumerate(opened)
        if o[5].tzinfo is not UTC or o[6].tzinfo is not UTC
    ]
    return _ENCODE((opened, [s for s in shifted if s[1] or s[2]]))


def _offset(when: datetime) -> int:
    offset = when.utcoffset()  # None: a naive time, sent as it is
    return 0 if offset is None else offset // timedelta(seconds=1)


def unpack(batch: tuple[list[Opened], list[Shifted]]) -> list[RecordedEvent]:
    """The events as the event store's own read would have returned them."""
    items, shifted = batch
    events = [event_of(*item) for item in items]
    for i, created, received in shifted:
        e = events[i]
        if created:  # 0: UTC already, or a naive time sent as it was
            e.created_at = e.created_at.astimezone(_zone(created))
        if received:
            e.received_at = e.received_at.astimezone(_zone(received))
    return events


def _zone(seconds: int) -> timezone:
    return timezone(timedelta(seconds=seconds))


def main() -> None:
    """`python -m service.rebuildreader FD`: the reader process, on the
    socket FD its parent passed; the backend is the first message."""
    out = Connection(int(sys.argv[1]))
    try:
        backend = pickle.loads(out.recv_bytes())
    except (EOFError, OSError):
        return  # the rebuild was closed before it started us
    serve(backend, out)


def serve(backend: Backend, out: Connection) -> None:
    """The reader process: it opens the store, then is told where to start,
    how many events a batch and how many the first; sends every event from
    there, then an empty batch at the end (as the store's read ends a
    rebuild); then makes answers, as asked, until the rebuild closes the
    pipe. On an error, its text."""
    # Ctrl-C at `loyalty rebuild` reaches the whole process group: the
    # rebuild decides, and closing the pipe or killing ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        opened = backend.open_events(backend.master_key()[0])
        try:
            after, limit, first = pickle.loads(out.recv_bytes())
            _read(opened.events, after, limit, first, out)
        finally:
            opened.close()
        _answer(out)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return  # the rebuild is gone (done, stopped, failed): nobody to tell
    except Exception as e:
        _send_error(out, e)
    finally:
        out.close()


def _read(
    store: EventStore, after: int, limit: int, first: int, out: Connection
) -> None:
    sender = _Sender(out)
    try:
        position, size = after, first
        while True:
            rows, epoch = store.index.scan(position, size, (), None)
            sender.put(pack(open_rows(rows, store.keyring, epoch)))
            if not rows:
                break
            position, size = rows[-1][0], limit
    finally:
        sender.close()
    sender.check()


class _Sender:
    """Sends from a thread of its own, so reading goes on while a send waits
    for the rebuild to take the previous batch: up to AHEAD batches ahead,
    which absorbs either side's hiccups on a busy machine."""

    def __init__(self, out: Connection) -> None:
        self.out = out
        self.queue: queue.Queue[bytes | None] = queue.Queue(AHEAD)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (message := self.queue.get()) is not None:
            if self.error is None:  # after an error, only drained
                try:
                    self.out.send_bytes(message)
                except BaseException as e:
                    self.error = e

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, message: bytes) -> None:
        self.check()
        self.queue.put(message)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def _answer(out: Connection) -> None:
    """Rounds of answers: chunks of (encoder, encoded states), then None;
    all the round's answers go back in one message, once every chunk is
    taken, so neither side's send can wait on the other's."""
    while True:
        made: list[bytes] = []
        while (chunk := pickle.loads(out.recv_bytes())) is not None:
            encode, blobs = chunk
            made += [encode(decode_state(blob)) for blob in blobs]
        out.send_bytes(_ENCODE(made))


def _send_error(out: Connection, e: Exception) -> None:
    # Bounded like the one-process rebuild's last error; no event content.
    with suppress(OSError):
        out.send_bytes(_ENCODE(f"{type(e).__name__}: {e}"[:500]))


class ProcessReader:
    """An EventSource reading through a reader process, started at once and
    told where to begin at the first read; `head` is the parent's store's.
    Reads must follow on from each other, as a rebuild's do. Close it to
    stop the process."""

    def __init__(self, backend: Backend, store: EventSource) -> None:
        self.backend = backend
        self.store = store
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._started = False
        self._position = 0
        self._limit = 0
        self._ended = False
        # Started now: it starts Python and opens the store while the
        # rebuild prepares its generation.
        self._spawn()

    def head(self) -> int:
        return self.store.head()

    def read(self, after: int, limit: int) -> list[RecordedEvent]:
        if not self._started:
            self._start(after, limit)
        elif after != self._position or limit != self._limit:
            raise ValueError(
                f"reads must follow on: after {self._position}, {self._limit} "
                f"a batch; asked after {after}, {limit}"
            )
        if self._ended:
            return []
        events = unpack(self._receive(BATCH))
        if events:
            self._position = events[-1].position
        else:
            self._ended = True
        return events

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            # Its sys.path is ours, as multiprocessing's spawn gives a child,
            # so whatever pickled the backend can be imported there too; -P
            # keeps the working directory off it (a `service` package there
            # must not stand in for ours).
            path = os.pathsep.join(p for p in sys.path if p)
            env = {**os.environ, "PYTHONPATH": path}
            argv = [sys.executable, "-P", "-m", "service.rebuildreader"]
            try:
                process = subprocess.Popen(
                    [*argv, str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    env=env,
                )
            except BaseException:
                ours.close()
                raise
        # Our copy of the child's end is closed, so its exit reads as EOF.
        self._process = process
        self._conn = Connection(ours.detach())
        with suppress(OSError):  # gone already: the first read says so
            self._conn.send_bytes(pickle.dumps(self.backend, pickle.HIGHEST_PROTOCOL))

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start(self, after: int, limit: int) -> None:
        assert self._conn is not None
        self._started = True
        self._position, self._limit = after, limit
        # If it is gone already, what it said (if anything) is read next.
        with suppress(OSError):
            self._conn.send_bytes(pickle.dumps((after, limit, min(limit, FIRST_BATCH))))

    def answer_many(
        self,
        states: list[CustomerState],
        encode_state: Callable[[CustomerState], bytes],
        encode: Callable[[CustomerState], bytes],
        meanwhile: Callable[[], None],
    ) -> tuple[list[bytes], list[bytes]]:
        """`states` encoded, and their answers: once the log is read, the
        reader process makes the answers from the encoded states, chunk by
        chunk as a thread here encodes them, while this process runs
        `meanwhile`."""
        if not self._ended or len(states) < HELPER_MIN:
            blobs = [encode_state(state) for state in states]
            meanwhile()
            return blobs, [encode(state) for state in states]
        assert self._conn is not None
        conn = self._conn
        encoded: list[bytes] = []
        # The reader makes every answer: this process is the flush's bound,
        # its one GIL encoding every state (~18 us each in a heap that folded
        # a million events) while it merges, and answers made here competed
        # with that encoding for the GIL (1,000,000 events, alternated three
        # times: answer_many 3.13 to 3.30 s with a fifth made here, 2.88 to
        # 3.02 s with none).

        def feed() -> None:
            # Encoded and sent chunk by chunk from this thread: a send waits
            # until the reader has answered the chunk before, and `meanwhile`
            # (a merge of staged rows: the database's own work, the GIL
            # released) runs beside the encoding.
            for i in range(0, len(states), ANSWER_CHUNK):
                chunk = [encode_state(s) for s in states[i : i + ANSWER_CHUNK]]
                encoded.extend(chunk)
                conn.send_bytes(pickle.dumps((encode, chunk), pickle.HIGHEST_PROTOCOL))
            conn.send_bytes(pickle.dumps(None))

        with ThreadPoolExecutor(1, thread_name_prefix="rebuild-feed") as pool:
            fed = pool.submit(feed)
            meanwhile()
        # Leaving the block waited for `feed`: every chunk was taken, or the
        # reader is gone.
        try:
            fed.result()
        except OSError:
            self._failed()
        answered: list[bytes] = self._receive(_ANSWERS)
        if len(answered) != len(states):
            raise ReaderFailed("the rebuild's reader process lost answers")
        return encoded, answered

    def _receive(self, decoder: msgspec.msgpack.Decoder[Any]) -> Any:
        assert self._conn is not None
        try:
            message = decoder.decode(self._conn.recv_bytes())
        except (EOFError, OSError):
            self._failed()
        if isinstance(message, str):
            raise ReaderFailed(f"the rebuild's reader process failed: {message}")
        return message

    def _failed(self) -> NoReturn:
        assert self._process is not None
        _exited(self._process, JOIN_TIMEOUT)
        raise ReaderFailed(
            "the rebuild's reader process exited unexpectedly "
            f"(exit code {self._process.returncode})"
        ) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        # Closing our end makes a reader blocked in a send exit; one still
        # reading is killed.
        process = self._process
        if process is not None and not _exited(process, 0.5 if self._ended else 0):
            process.kill()
            _exited(process, JOIN_TIMEOUT)


def _exited(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether `process` has exited (and is reaped) within `seconds`."""
    with suppress(subprocess.TimeoutExpired):
        process.wait(seconds)
    return process.poll() is not None


@contextmanager
def process_reader(backend: Backend, store: EventSource) -> Iterator[ProcessReader]:
    reader = ProcessReader(backend, store)
    try:
        yield reader
    finally:
        reader.close()


if __name__ == "__main__":
    main()
