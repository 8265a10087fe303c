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
from typing import Any, Dict, Iterator, List, Tuple

from lossexp.errors import Terminated

#: signals this process was stopped by (a sweep's parent run ends KILLED when a job saw one)
received: List[int] = []
#: libraries an exception raised mid-operation leaves broken: OmegaConf, interrupted within ``flag_override``
#: (Hydra composing a sweep's next job), failed in its cleanup, ``AttributeError: 'NoneType' object has no
#: attribute '_invalidate_flags_cache'``, and that traceback and exit 1 replaced the SIGTERM's exit 143
DEFERRED_IN = ("omegaconf",)
#: a signal that arrived within them is sent again this often, until its operation is over and it raised
DEFER_SECONDS = 0.02


def within(frame: Any, packages: Tuple[str, ...]) -> bool:
    """Whether ``frame`` or a frame that called it runs code of one of ``packages``."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.split(".")[0] in packages:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (restored after), and
    SIGINT ``KeyboardInterrupt`` as Python's own handler does; either, arriving within a library of
    :data:`DEFERRED_IN`, is sent again every :data:`DEFER_SECONDS` until it raises.

    Python runs a signal handler between any two bytecodes, also inside a ``__del__`` or a weakref
    callback (SQLAlchemy's, during garbage collection), where an exception is printed and dropped.
    A SIGTERM lost that way is raised when the block ends without an exception of its own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    #: each deferred signal's resending thread and the event that ends it (its handler raised, or the block ended)
    resending: Dict[int, Tuple[threading.Thread, threading.Event]] = {}

    def resend(signum: int, raised: threading.Event) -> None:
        # to the main thread itself: sent to the process, another thread (TensorFlow's, MLflow's writer) may take
        # it; and again until the handler raised, since one sent in the instant before a blocking call began (a
        # sleep, a wait on a job) is seen only when that call returns
        while not raised.wait(DEFER_SECONDS):
            signal.pthread_kill(threading.main_thread().ident, signum)

    def handler(signum: int, frame: Any) -> None:
        if within(frame, DEFERRED_IN):  # raised there, the library's cleanup fails and hides it: shortly after
            if signum not in resending or not resending[signum][0].is_alive():
                raised = threading.Event()
                resending[signum] = (threading.Thread(target=resend, args=(signum, raised), daemon=True), raised)
                resending[signum][0].start()
            return
        if signum in resending:
            resending[signum][1].set()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)
        raise Terminated(signum)

    already = len(received)
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, handler)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # Python's Ctrl-C, deferred alike
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        for thread, raised in resending.values():  # none sent once the handlers are restored (SIGTERM's default
            raised.set()  # ends the process)
            thread.join()
        for signum, restored in previous.items():
            signal.signal(signum, restored)
    if len(received) > already:
        raise Terminated(received[-1])
