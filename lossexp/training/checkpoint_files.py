"""Where a run's checkpoint lives and what its progress file says (no TensorFlow: the CLI reads it
before a resumed run starts; :mod:`lossexp.training.checkpoint` writes and restores it)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

from lossexp.errors import Terminated

#: set for the training process of ``lossexp train --resume RUN_ID`` (its output directory is the run's)
RESUME_ENV = "LOSSEXP_RESUME"
#: the run's tag naming its checkpoint directory, and the tag of a resumed run (where it continued)
TAG = "lossexp.checkpoint"
RESUMED_TAG = "lossexp.resumed"
#: the checkpoint's directory in a run's output directory, its progress file and its state files
#: (``state-<epochs>.npz``: the one the progress names)
DIRECTORY = "checkpoint"
PROGRESS = "progress.json"
STATE_PREFIX = "state-"
#: how long a stopped run waits for its last epoch's progress to be committed before saying how to continue it
SETTLE_SECONDS = 10.0


def progress(directory: Path) -> Optional[Dict[str, Any]]:
    """``{"epochs": …, "step": …, "state": file name}`` of the checkpoint in ``directory``, or None
    when there is none (no progress, or not the state it names)."""
    path = Path(directory) / PROGRESS
    if not path.is_file():
        return None
    found = json.loads(path.read_text())
    return found if (Path(directory) / str(found.get("state"))).is_file() else None


@contextlib.contextmanager
def resumable(directory: Path, run_id: Callable[[], Optional[str]]) -> Iterator[None]:
    """A Ctrl-C or SIGTERM that stops a run with a checkpoint carries the command that continues it
    (``resume_command``, which ``lossexp train`` prints with the run's end). The last epoch's
    progress is committed once its points are in the store: waited for here, a few seconds at most."""
    try:
        yield
    except (KeyboardInterrupt, Terminated) as stopped:
        if run_id():
            from lossexp.tracking.store import pending_writes_done

            pending_writes_done(timeout=SETTLE_SECONDS)
        if run_id() and progress(directory):
            stopped.resume_command = f"lossexp train --resume {run_id()}"
        raise
