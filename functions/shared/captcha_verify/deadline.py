"""Wall-clock bounds for blocking calls whose libraries only bound each socket operation.

A per-read timeout does not bound a call: a peer that sends a byte just before each timeout
holds it forever, and boto3's retries multiply its timeouts. Two tools, each used where it fits:
- `SocketDeadline`: shuts down the sockets of one HTTP exchange when its time is up, so the
  blocked read returns at once in the calling thread (the provider call: no thread left behind,
  X-Ray subsegments stay where they belong).
- `run_within`: waits for a call on a daemon thread at most so long (boto3 calls, which expose no
  socket); a late call finishes or fails on its own, its result unused. `begin` starts such a
  call without waiting, so independent calls overlap.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress

_current = threading.local()


class SocketDeadline:
    """Shuts down every socket `watch`ed after `seconds`; `expired` tells the caller why it failed."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if not self.expired:
                return
        _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    @contextmanager
    def running(self) -> Iterator[SocketDeadline]:
        _current.deadline = self
        self._timer.start()
        try:
            yield self
        finally:
            self._timer.cancel()
            _current.deadline = None


def watch_current(sock: socket.socket | None) -> None:
    """Puts a socket under the deadline running in this thread, if any."""
    deadline: SocketDeadline | None = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed: nothing left to interrupt
        sock.shutdown(socket.SHUT_RDWR)


def begin[T](work: Callable[[], T]) -> Future[T]:
    """work() started on a daemon thread: two AWS calls that do not depend on each other cost one
    round trip instead of two (the caller waits for each with a timeout)."""
    future: Future[T] = Future()

    def target() -> None:
        try:
            future.set_result(work())
        except BaseException as error:
            future.set_exception(error)

    threading.Thread(target=target, name="bounded-call", daemon=True).start()
    return future


def run_within[T](seconds: float, work: Callable[[], T]) -> T:
    """work()'s result, or TimeoutError once `seconds` have passed."""
    return begin(work).result(timeout=max(seconds, 0.0))
