"""Cooperative cancellation of the long-running tools (``focalkit tune``, ``focalkit compare``).

A signal handler that raises ``KeyboardInterrupt`` interrupts the main thread wherever it is: inside
a database driver, a connection pool, a lock, a ``finally`` or a weak-reference callback (where
Python prints "Exception ignored" and carries on). So the handlers installed by
:func:`signals_cancel` only record the request, and the work stops at safe points by calling
:func:`check`, which raises :class:`Cancelled` there:

* the training loop (:func:`focalkit.tools.experiments.train.fit_and_score`) between batches;
* the trial loop of ``focalkit tune`` before it asks for a trial, between folds and when a score is
  reported, never inside a storage call; the running trial is then given back (marked failed and
  queued again);
* start-up work that holds nothing (imports, loading the data) runs in :func:`interruptible`
  blocks, where the signal also raises at once.

A second SIGINT/SIGTERM (a second signal, not a request from elsewhere) does not wait: the process exits at once with ``128 + signal`` (or, with
``force="raise"``, the handler raises ``KeyboardInterrupt`` as Python does by default).

Worker processes also stop when their parent is gone or asks them to (:func:`watch_parent`): a
parent-death signal (``prctl(PR_SET_PDEATHSIG)`` on Linux) and, at every :func:`check` (at most
every 0.1 s), a look at the parent's process id and at a pipe from the parent (closed or written
to: stop).

Without :func:`signals_cancel` (e.g. a user's own script calling ``fit_and_score``) nothing is
installed and :func:`check` costs one global lookup.

    >>> request("a test"); requested()
    'a test'
    >>> try:
    ...     check()
    ... except Cancelled as e:
    ...     print("stopped:", e.reason)
    stopped: a test
    >>> reset(); check()  # no request: returns
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal, NoReturn

__all__ = ["Cancelled", "check", "exit_now", "interruptible", "request", "requested", "reset",
           "signals_cancel", "sleep", "watch_parent"]

WATCH_INTERVAL_S = 0.1  # seconds between two looks at the parent process (in check)
_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s)

_requested: str | None = None  # why the work must stop (None: go on)
_signals = 0  # SIGINT/SIGTERM received in the current signals_cancel block
_immediate = 0  # depth of interruptible() blocks
_force: Literal["exit", "raise"] = "exit"
_depth = 0  # nesting depth of signals_cancel
_parent: tuple[int, Any] | None = None  # (parent pid, connection from the parent) of a worker
_next_watch = 0.0
_message = ""  # written to stderr at the first signal


class Cancelled(KeyboardInterrupt):
    """Raised by :func:`check` once a stop was requested (a ``KeyboardInterrupt``: code that
    catches ``Exception`` does not swallow it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def requested() -> str | None:
    """Why the work must stop (e.g. ``"SIGTERM"``), or None."""
    return _requested


def request(reason: str) -> None:
    """Asks the work to stop at its next :func:`check` (what the signal handlers do)."""
    global _requested
    if _requested is None:
        _requested = reason


def reset() -> None:
    """Forgets a request (the outermost :func:`signals_cancel` does it on exit)."""
    global _requested
    _requested = None


def check() -> None:
    """Raises :class:`Cancelled` if a stop was requested (or, in a worker process, the parent is
    gone or asked to stop); call it only where stopping is safe."""
    global _next_watch
    if _requested is None and _parent is not None:
        now = time.monotonic()
        if now >= _next_watch:
            _next_watch = now + WATCH_INTERVAL_S
            _look_at_parent()
    if _requested is not None:
        raise Cancelled(_requested)


def sleep(seconds: float) -> None:
    """``time.sleep`` that :func:`check`\\ s every 0.1 s."""
    end = time.monotonic() + seconds
    while True:
        check()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


def exit_now(code: int) -> NoReturn:
    """Ends the process with ``code`` at once, after flushing stdout and stderr, without the
    interpreter's teardown.

    For a process that stopped on request and has nothing left to write (its trial given back,
    its message printed): tearing down torch, optuna, SQLAlchemy and matplotlib collects millions
    of objects, seconds on a busy machine, which would delay the exit the user asked for. Only the
    console entry point and the worker processes call it (never a library caller's process).
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream: exit anyway
            pass
    os._exit(code)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within the block a signal also raises :class:`Cancelled` at once, from the handler.

    Only for work that holds nothing to give back or half-write (imports, loading data, building a
    model), so that a stop request during a long start-up does not wait for it; never around a
    database or file write. If the exception is swallowed (raised inside a ``__del__`` or a weak
    reference callback), the request stays and the next :func:`check` raises it.
    """
    global _immediate
    check()
    _immediate += 1
    try:
        yield
    finally:
        _immediate -= 1


def _look_at_parent() -> None:
    assert _parent is not None
    pid, conn = _parent
    if os.getppid() != pid:
        request(f"the parent process {pid} exited")
        return
    try:
        if conn is not None and conn.poll(0):  # a byte, or end of file: the parent closed it
            request("stopped by the parent process")
    except (OSError, EOFError):
        request("stopped by the parent process")


def _handler(signum: int, frame: Any) -> None:
    global _signals
    name = signal.Signals(signum).name
    _signals += 1
    if _signals > 1:  # the second signal (a request from elsewhere does not count): do not wait
        if _force == "raise":
            raise KeyboardInterrupt
        os.write(2, f"\n{name} again: exiting now\n".encode())
        os._exit(128 + signum)
    request(name)
    if _message:
        os.write(2, _message.format(signal=name).encode())
    if _immediate:  # nothing to protect here (see interruptible): do not wait for a check
        raise Cancelled(name)


def _ours_or_default(signum: int, current: Any) -> bool:
    if current is _handler:
        return True
    if signum == getattr(signal, "SIGINT", None):
        return current is signal.default_int_handler
    return current in (signal.SIG_DFL, None)


@contextlib.contextmanager
def signals_cancel(
    *, force: Literal["exit", "raise"] = "exit", message: str = "",
) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM request a cooperative stop (:func:`check` raises
    :class:`Cancelled` at the next safe point) and a second one exits at once.

    ``force="exit"`` (command lines, worker processes): the second signal ends the process with
    ``os._exit(128 + signal)``; ``force="raise"`` (the Python API): it raises ``KeyboardInterrupt``.
    ``message`` (``{signal}`` is replaced) is written to stderr at the first signal.

    Only signals still at Python's default handling are taken over, and only in the main thread
    (elsewhere the block runs unchanged). Nested blocks share the outer one's handlers. On leaving
    the outermost block the handlers are restored and the request is forgotten; when the block ends
    without an exception while a request is pending (no :func:`check` ran since, or the
    :class:`Cancelled` was caught), it is raised there (a signal is never swallowed).
    """
    global _depth, _force, _message, _signals
    installed: dict[int, Any] = {}
    outer = _depth == 0
    if outer and threading.current_thread() is threading.main_thread():
        _force, _message, _signals = force, message, 0
        for s in _SIGNALS:
            current = signal.getsignal(s)
            if _ours_or_default(s, current):
                installed[s] = current
                signal.signal(s, _handler)
    _depth += 1
    failed = True
    try:
        yield
        failed = False
    finally:
        _depth -= 1
        if outer:
            for s, previous in installed.items():
                signal.signal(s, previous)
            reason = _requested
            reset()
            if reason is not None and not failed:
                raise Cancelled(reason)


_PARENT_DEATH_SIGNAL = getattr(signal, "SIGUSR2", None)


def _parent_died(signum: int, frame: Any) -> None:
    request("the parent process exited")


def _set_parent_death_signal(signum: int) -> bool:
    """``prctl(PR_SET_PDEATHSIG, signum)``: Linux sends ``signum`` to this process when its parent
    exits. False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, signum, 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def watch_parent(pid: int, conn: Any = None) -> None:
    """In a worker process (main thread): stop at the next :func:`check` when the parent ``pid``
    exits or writes to / closes ``conn`` (a ``multiprocessing`` connection).

    On Linux the kernel also signals the parent's death (SIGUSR2, whose handler only records the
    request: the kernel may send it more than once, once per exiting thread of the parent, so it is
    not SIGTERM, where a second signal means "exit at once").
    """
    global _parent, _next_watch
    if _PARENT_DEATH_SIGNAL is not None and threading.current_thread() is threading.main_thread():
        signal.signal(_PARENT_DEATH_SIGNAL, _parent_died)
        _set_parent_death_signal(_PARENT_DEATH_SIGNAL)
    _parent, _next_watch = (pid, conn), 0.0
    _look_at_parent()  # the parent may have died before the death signal was armed
