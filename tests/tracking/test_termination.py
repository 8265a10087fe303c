"""SIGTERM turned into an exception (in-process)."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from lossexp.errors import Terminated, signals_unmasked, stop_beneath
from lossexp.tracking.termination import terminate_on_signals, within


def test_sigterm_raises_terminated_inside_the_block_only():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught:
        with terminate_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10 ** 6):  # the handler runs between bytecodes
                pass
    assert caught.value.signum == signal.SIGTERM and str(caught.value) == "terminated by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is previous


class _Dropping:
    """An object whose finaliser runs Python code, as SQLAlchemy's weakref callbacks do: a signal
    handled while it runs raises there, and Python prints and drops the exception."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10 ** 6):  # the handler runs here, inside __del__
            pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped exception
def test_a_sigterm_dropped_inside_a_finaliser_is_raised_when_the_block_ends():
    reached_the_end = False
    with pytest.raises(Terminated):
        with terminate_on_signals():
            _Dropping()  # collected at once: its __del__ drops the handler's exception
            reached_the_end = True  # so the block runs on
    assert reached_the_end


#: an operation of a library an exception leaves broken mid-way (its module named as OmegaConf's): it signals
#: this process, then runs on for 0.2 s, and says whether it got to its end
FRAGILE = """
def operation(signum, done):
    import os, time
    os.kill(os.getpid(), signum)
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        pass
    done.append(True)
"""


@pytest.mark.parametrize("signum, stopped", [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
def test_a_signal_inside_omegaconf_is_raised_once_its_operation_is_over(signum, stopped, monkeypatch):
    """A SIGTERM that landed while Hydra composed a sweep's next job raised inside OmegaConf's flag_override,
    whose cleanup then failed ('NoneType' object has no attribute '_invalidate_flags_cache'): a traceback and
    exit 1, where the sweep's exit 143 was due. A signal there is sent again once OmegaConf is done."""
    monkeypatch.setattr(signal, "getsignal", lambda s, real=signal.getsignal: (
        signal.default_int_handler if s == signal.SIGINT else real(s)))  # Python's Ctrl-C handler, as a CLI has
    done, sent = [], []  # each resending of the signal: whether the operation was over when it was sent
    monkeypatch.setattr(signal, "pthread_kill", lambda thread, s, real=signal.pthread_kill: (
        sent.append((s, bool(done), thread == threading.main_thread().ident)), real(thread, s))[1])
    namespace = {"__name__": "omegaconf._an_operation"}
    exec(FRAGILE, namespace)
    assert within(_frame_of(namespace), ("omegaconf",))
    with pytest.raises(stopped):
        with terminate_on_signals():
            namespace["operation"](signum, done)
            time.sleep(60)  # the signal sent again lands here (were it lost: no exception, the test fails)
    assert done == [True]  # the operation ran to its end: the first delivery did not raise within it
    assert {(number, main) for number, _, main in sent} == {(signum, True)}  # to the main thread, which it wakes
    # sent again while the operation ran, then after it until it raised (one sent in the instant before the sleep
    # began was seen only as the sleep returned: the test took 60 s), and never once it raised
    after = [over for _, over, _ in sent].count(True)
    assert 1 <= after <= 2
    time.sleep(0.1)
    assert [over for _, over, _ in sent].count(True) == after


def _frame_of(namespace):
    """A frame running code of ``namespace``'s module."""
    exec("import sys\ndef here():\n    return sys._getframe()\n", namespace)
    return namespace["here"]()


def masked_by_cleanup(stop: BaseException) -> Exception:
    """What library code failing in its cleanup as ``stop`` unwinds raises: an exception whose context is ``stop``."""
    try:
        raise stop
    except BaseException:
        try:
            raise AttributeError("'NoneType' object has no attribute '_invalidate_flags_cache'")
        except AttributeError as failed:
            return failed


def test_an_exception_raised_as_a_signals_exception_unwound_is_that_signal():
    terminated = Terminated(signal.SIGTERM)
    assert stop_beneath(masked_by_cleanup(terminated)) is terminated
    assert isinstance(stop_beneath(masked_by_cleanup(KeyboardInterrupt())), KeyboardInterrupt)
    with pytest.raises(Terminated):
        with signals_unmasked():
            raise masked_by_cleanup(Terminated(signal.SIGTERM))
    try:  # replaced on purpose: not a stop
        try:
            raise Terminated(signal.SIGTERM)
        except Terminated:
            raise ValueError("reported") from None
    except ValueError as replaced:
        assert stop_beneath(replaced) is None
    with pytest.raises(RuntimeError):
        with signals_unmasked():
            raise RuntimeError("no signal")
