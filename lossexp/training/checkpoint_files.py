"""Where a run's checkpoint lives and what its progress file says (no TensorFlow: the CLI reads it
before a resumed run starts; :mod:`lossexp.training.checkpoint` writes and restores it)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

from lossexp.errors import Terminated

#: set for the training process of ``lossexp train --resume RUN_ID`` (its output directory is the run's)
RESUME_ENV = "LOSSEXP_RESUME"
#: the run's tag naming its checkpoint directory, and the tag of a resumed run (where it continued)
TAG = "lossexp.checkpoint"
RESUMED_TAG = "lossexp.resumed"
#: the checkpoint's directory in a run's output directory, and its two files
DIRECTORY = "checkpoint"
STATE = "state.npz"
PROGRESS = "progress.json"


def progress(directory: Path) -> Optional[Dict[str, int]]:
    """``{"epochs": …, "step": …}`` of the checkpoint in ``directory``, or None when there is none."""
    path = Path(directory) / PROGRESS
    if not (path.is_file() and (Path(directory) / STATE).is_file()):
        return None
    return json.loads(path.read_text())


@contextlib.contextmanager
def resumable(directory: Path, run_id: Callable[[], Optional[str]]) -> Iterator[None]:
    """A Ctrl-C or SIGTERM that stops a run with a checkpoint carries the command that continues it
    (``resume_command``, which ``lossexp train`` prints with the run's end)."""
    try:
        yield
    except (KeyboardInterrupt, Terminated) as stopped:
        if run_id() and progress(directory):
            stopped.resume_command = f"lossexp train --resume {run_id()}"
        raise
