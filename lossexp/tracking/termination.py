"""SIGTERM turned into an exception, as Python turns SIGINT into ``KeyboardInterrupt``.

A run's context manager (:class:`lossexp.tracking.run.TrackedRun`) then sees an exception, flushes
the pending metrics and ends the run KILLED, and the CLI exits 128 + the signal number with one
line. The CLI holds this from its start (``lossexp train`` / ``ablate``), so a SIGTERM in the
seconds of start-up, before any run exists, is one line too and not a silent exit. Light on
purpose: the CLI imports it before TensorFlow or MLflow.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator, List

from lossexp.errors import Terminated

#: signals this process was stopped by (a sweep's parent run ends KILLED when a job saw one)
received: List[int] = []


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (restored after).

    Python runs a signal handler between any two bytecodes, also inside a ``__del__`` or a weakref
    callback (SQLAlchemy's, during garbage collection), where an exception is printed and dropped.
    A SIGTERM lost that way is raised when the block ends without an exception of its own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        raise Terminated(signum)

    already = len(received)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    if len(received) > already:
        raise Terminated(received[-1])
