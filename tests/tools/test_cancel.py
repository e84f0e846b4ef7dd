"""focalkit.tools.cancel: signals only record a stop request, check() raises it at safe points, a
second signal does not wait, worker processes stop with their parent."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from focalkit.tools import cancel


@pytest.fixture(autouse=True)
def _clean():
    cancel.reset()
    yield
    cancel.reset()


def test_check_raises_only_after_a_request():
    cancel.check()
    cancel.request("first")
    cancel.request("second")  # the first reason is kept
    with pytest.raises(cancel.Cancelled, match="first") as info:
        cancel.check()
    assert isinstance(info.value, KeyboardInterrupt) and not isinstance(info.value, Exception)
    assert info.value.reason == "first"
    with pytest.raises(cancel.Cancelled):  # it stays requested: every later check stops too
        cancel.check()


def test_sleep_stops_early_on_a_request():
    threading.Timer(0.2, cancel.request, args=("timer",)).start()
    t0 = time.monotonic()
    with pytest.raises(cancel.Cancelled):
        cancel.sleep(30)
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_only_sets_the_flag_and_the_handlers_are_restored(signum):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    reached = []
    with pytest.raises(cancel.Cancelled, match=signal.Signals(signum).name):
        with cancel.signals_cancel(force="raise"):
            signal.raise_signal(signum)  # handled here, in the main thread: nothing is raised ...
            reached.append("after the signal")
            assert cancel.requested() == signal.Signals(signum).name
            cancel.check()  # ... until a safe point
            reached.append("not reached")
    assert reached == ["after the signal"]
    assert {s: signal.getsignal(s) for s in before} == before
    assert cancel.requested() is None


def test_a_request_no_check_saw_is_raised_when_the_block_ends():
    with pytest.raises(cancel.Cancelled):
        with cancel.signals_cancel():
            signal.raise_signal(signal.SIGTERM)
    with cancel.signals_cancel():  # and a clean block ends cleanly
        pass


def test_an_error_in_the_block_is_not_replaced():
    with pytest.raises(ZeroDivisionError):
        with cancel.signals_cancel():
            signal.raise_signal(signal.SIGTERM)
            1 / 0


def test_second_signal_raises_at_once_with_force_raise():
    with pytest.raises(KeyboardInterrupt) as info:
        with cancel.signals_cancel(force="raise"):
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # raised by the handler itself, here
            pytest.fail("not reached")
    assert type(info.value) is KeyboardInterrupt


def test_nested_blocks_share_the_outer_handlers():
    with pytest.raises(cancel.Cancelled):
        with cancel.signals_cancel(force="exit"):
            with cancel.signals_cancel(force="raise"):  # inner: no-op
                signal.raise_signal(signal.SIGTERM)
            assert cancel.requested() == "SIGTERM"  # the inner block did not forget nor raise
    assert cancel.requested() is None


def test_a_custom_handler_is_left_alone():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda *a: seen.append(1))
    try:
        with cancel.signals_cancel():
            signal.raise_signal(signal.SIGTERM)
            assert seen == [1] and cancel.requested() is None
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_nothing_is_installed():
    out = []

    def run():
        before = signal.getsignal(signal.SIGTERM)
        with cancel.signals_cancel():
            out.append(signal.getsignal(signal.SIGTERM) is before)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert out == [True]


_SECOND = textwrap.dedent("""
    import os, signal, sys, time
    from focalkit.tools import cancel
    with cancel.signals_cancel(message="first {signal}\\n"):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        print("still running", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        print("not reached", flush=True)
""")


def test_second_signal_exits_at_once_with_force_exit():
    r = subprocess.run([sys.executable, "-c", _SECOND], capture_output=True, text=True, timeout=60)
    assert r.returncode == 128 + signal.SIGTERM, r.stderr
    assert r.stdout == "still running\n"
    assert "first SIGTERM" in r.stderr and "SIGTERM again: exiting now" in r.stderr


def _child(parent: int, conn, q) -> None:
    cancel.watch_parent(parent, conn)
    end = time.monotonic() + 30
    try:
        while time.monotonic() < end:
            cancel.check()
            time.sleep(0.01)
        q.put("not stopped")
    except cancel.Cancelled as e:
        q.put(e.reason)


def test_watch_parent_stops_when_the_parent_closes_the_pipe():
    ctx = mp.get_context("spawn")
    r, w = ctx.Pipe(duplex=False)
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(os.getpid(), r, q))
    p.start()
    r.close()
    time.sleep(0.5)
    assert p.is_alive()
    w.close()
    assert q.get(timeout=60) == "stopped by the parent process"
    p.join(30)


def test_watch_parent_stops_when_the_parent_is_not_the_given_pid():
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(1, None, q))  # as if the parent had died (re-parented)
    p.start()
    assert q.get(timeout=60) == "the parent process 1 exited"
    p.join(30)


_ORPHAN = textwrap.dedent("""
    import multiprocessing as mp, os, sys, time

    def child(parent):
        from focalkit.tools import cancel
        cancel.watch_parent(parent)
        with cancel.signals_cancel():
            try:
                while True:
                    cancel.check()
                    time.sleep(0.01)
            except cancel.Cancelled as e:
                with open(sys.argv[1], "w") as f:
                    f.write(e.reason)
                raise SystemExit(130)

    if __name__ == "__main__":
        p = mp.get_context("spawn").Process(target=child, args=(os.getpid(),))
        p.start()
        print(p.pid, flush=True)
        time.sleep(600)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_a_worker_stops_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN)
    note = tmp_path / "reason"
    parent = subprocess.Popen([sys.executable, str(script), str(note)], stdout=subprocess.PIPE,
                              text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # let the child arm its watch
    parent.kill()
    parent.wait(30)
    end = time.monotonic() + 30
    while time.monotonic() < end and not note.exists():
        time.sleep(0.05)
    assert note.read_text() in ("the parent process exited", "the parent process %d exited" % parent.pid)
    while time.monotonic() < end and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the child outlived its parent"


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not reaped by its new parent, counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_docstring_examples():
    import doctest

    failed, attempted = doctest.testmod(cancel)
    assert failed == 0 and attempted >= 3


def test_interruptible_raises_from_the_handler_and_check_catches_a_swallowed_one():
    with pytest.raises(cancel.Cancelled, match="SIGTERM"):
        with cancel.signals_cancel():
            with cancel.interruptible():
                signal.raise_signal(signal.SIGTERM)
                pytest.fail("not reached: raised by the handler")
    # swallowed (as in a __del__): the request stays and the next check raises it
    with pytest.raises(cancel.Cancelled):
        with cancel.signals_cancel():
            with cancel.interruptible():
                try:
                    signal.raise_signal(signal.SIGTERM)
                except cancel.Cancelled:
                    pass
            cancel.check()
            pytest.fail("not reached")
    reached = []
    with pytest.raises(cancel.Cancelled):
        with cancel.signals_cancel():
            with cancel.interruptible():
                pass
            signal.raise_signal(signal.SIGTERM)  # outside interruptible: the handler does not raise
            reached.append(1)
            cancel.check()
    assert reached == [1]
