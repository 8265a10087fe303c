"""SIGTERM turned into an exception (in-process)."""
from __future__ import annotations

import os
import signal

import pytest

from lossexp.errors import Terminated
from lossexp.tracking.termination import terminate_on_signals


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
