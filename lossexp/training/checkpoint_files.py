"""Where a run's checkpoint lives and what its progress file says (no TensorFlow: the CLI reads it
before a resumed run starts; :mod:`lossexp.training.checkpoint` writes and restores it)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

from lossexp.errors import ConfigError, Terminated

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
#: drift's θ₀, written once a run beside the state files (:mod:`lossexp.training.checkpoint`)
DRIFT_INITIAL = "drift-initial.npz"
#: how long a stopped run waits for its last epoch's progress to be committed before saying how to continue it
SETTLE_SECONDS = 10.0


def progress(directory: Path) -> Optional[Dict[str, Any]]:
    """``{"epochs": …, "step": …, "state": file name}`` of the checkpoint in ``directory``, or None
    when there is none (no progress, or not the state it names). A progress file that is not one
    lossexp wrote (truncated, edited: it is written under another name and renamed, so a kill
    cannot leave it half-written) is one line naming it."""
    path = Path(directory) / PROGRESS
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text())
        readable = (isinstance(found, dict) and isinstance(found.get("state"), str)
                    and all(isinstance(found.get(key), int) for key in ("epochs", "step")))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise unreadable(path, f"{type(error).__name__}: {error}") from None
    if not readable:
        raise unreadable(path, f"not the epochs, step and state file of a checkpoint: {str(found)[:80]}")
    return found if (Path(directory) / found["state"]).is_file() else None


def unreadable(path: Path, why: str) -> ConfigError:
    """The one line for a checkpoint file that cannot be read back (``why``): the run cannot continue
    from it, but its config can be trained again."""
    return ConfigError(f"Invalid checkpoint file {path}: {why} (the run cannot continue from it; "
                       "lossexp train --from-run RUN_ID trains its config again)")


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
