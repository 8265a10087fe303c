"""Signals held over a block are delivered, once each, to the handlers in place when it ends."""
from __future__ import annotations

import signal
import threading

import pytest

from lossexp.errors import Terminated
from lossexp.tracking import held_signals
from lossexp.tracking.termination import terminate_on_signals


@pytest.fixture
def ctrl_c_interrupts():
    """SIGINT raising KeyboardInterrupt, as in a terminal (a test worker may ignore it), restored after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_within_the_block_interrupts_at_its_end(ctrl_c_interrupts):
    done = []
    with pytest.raises(KeyboardInterrupt):
        with held_signals.held():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # twice: delivered once
            done.append("the whole block")
    assert done == ["the whole block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_sigterm_within_the_block_reaches_lossexp_s_handler_after_it():
    done = []
    with pytest.raises(Terminated):
        with terminate_on_signals():
            with held_signals.held():
                signal.raise_signal(signal.SIGTERM)
                done.append("the whole block")
    assert done == ["the whole block"]


def test_no_signal_no_effect_and_handlers_restored(ctrl_c_interrupts):
    before = {signum: signal.getsignal(signum) for signum in held_signals.HELD}
    with held_signals.held():
        pass
    assert {signum: signal.getsignal(signum) for signum in held_signals.HELD} == before


def test_outside_the_main_thread_the_block_just_runs():
    seen = []

    def work() -> None:
        with held_signals.held():  # signal.signal would raise ValueError here
            seen.append(threading.current_thread().name)

    thread = threading.Thread(target=work, name="worker")
    thread.start()
    thread.join()
    assert seen == ["worker"]
