"""A block SIGINT and SIGTERM cannot interrupt halfway: each one that arrives is delivered when it ends.

Python raises ``KeyboardInterrupt`` (and lossexp's SIGTERM handler :class:`lossexp.errors.Terminated`)
between any two bytecodes of the main thread, also while a call blocks on a lock, such as
``ThreadPoolExecutor.submit`` starting its thread. A batch of metrics handed to the background writer
but not yet taken off the pending list, when a Ctrl-C landed between the two, was sent again when the
run was closed: every point of that epoch twice in the store. Handing a batch over is therefore done
with the signals held (:func:`held`), and the signal then acts as it would have, just after.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, List

HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM are recorded; at its end their handlers (restored) get them.

    Outside the main thread, where Python runs no signal handler, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: List[int] = []
    # a handler installed outside Python (getsignal gives None) could not be put back: left alone
    previous = {signum: signal.signal(signum, lambda signum, frame: arrived.append(signum))
                for signum in HELD if signal.getsignal(signum) is not None}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(arrived):  # each signal once, in the order they came
            signal.raise_signal(signum)
