"""deadline.py: wall-clock bounds for blocking calls.

Each blocked call here is a read on a local socket pair or a wait on an event, with a timeout of
its own as a backstop, so a broken bound fails the test instead of hanging it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from captcha_verify.deadline import SocketDeadline, begin, run_within, watch_current

BACKSTOP = 10.0  # seconds; only reached when the bound under test is broken


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair: reads on the first block until the second sends (or the first is shut)."""
    ours, peer = socket.socketpair()
    ours.settimeout(BACKSTOP)
    yield ours, peer
    ours.close()
    peer.close()


def test_an_expired_deadline_ends_a_blocked_read_in_the_calling_thread(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    with SocketDeadline(0.05).running() as deadline:
        watch_current(ours)
        assert ours.recv(1) == b""  # shut down: the read returns instead of waiting for the peer
    assert deadline.expired


def test_a_socket_watched_after_expiry_is_shut_at_once(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    deadline = SocketDeadline(0.0)
    with deadline.running():
        for _ in range(int(BACKSTOP / 0.01)):
            if deadline.expired:
                break
            threading.Event().wait(0.01)
        assert deadline.expired
        deadline.watch(ours)
        assert ours.recv(1) == b""


def test_a_call_done_in_time_is_left_alone(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    with SocketDeadline(BACKSTOP).running() as deadline:
        watch_current(ours)
        peer.sendall(b"x")
        assert ours.recv(1) == b"x"
    assert not deadline.expired


def test_only_the_running_deadline_watches(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    with SocketDeadline(BACKSTOP).running():
        pass
    watch_current(ours)  # no deadline running in this thread any more
    watch_current(None)  # a connection that has no socket yet
    peer.sendall(b"y")
    assert ours.recv(1) == b"y"


def test_run_within_returns_the_result_or_raises_what_the_work_raised() -> None:
    assert run_within(BACKSTOP, lambda: 42) == 42
    with pytest.raises(KeyError):
        run_within(BACKSTOP, lambda: {}["missing"])


def test_run_within_stops_waiting_for_work_that_does_not_finish() -> None:
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError):
            run_within(0.05, lambda: release.wait(BACKSTOP))
        with pytest.raises(TimeoutError):
            run_within(-1.0, lambda: release.wait(BACKSTOP))  # no time left: no wait at all
    finally:
        release.set()


def test_begun_calls_run_at_the_same_time() -> None:
    first_running = threading.Event()

    def first() -> str:
        first_running.set()
        return "first"

    def second() -> str:
        # Finishes only if the first runs while this one waits: the calls overlap.
        assert first_running.wait(BACKSTOP)
        return "second"

    waiting = begin(second)
    done = begin(first)
    assert (waiting.result(BACKSTOP), done.result(BACKSTOP)) == ("second", "first")
