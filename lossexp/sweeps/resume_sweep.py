"""``lossexp train -m OVERRIDES --resume PARENT_ID [--retry-failed]``: continue a grid sweep that
stopped (Ctrl-C, SIGTERM, a crash, ``kill -9``) under the same parent run.

What the sweep does once :mod:`lossexp.sweeps.resume_check` let the command through: the sweep
callback reopens the parent (tag ``sweep.resumes``, :func:`reopen`) and ends the children a dead
sweep left RUNNING as KILLED. Each job then finds the child of its own overrides
(tag ``sweep.job_key``, their fingerprint: matched by value, not by position) and (:func:`earlier_attempt`):

* FINISHED: not run again; the job returns the objective the child logged;
* KILLED, or left RUNNING and reaped, with a checkpoint: continues in that child run from its last
  finished epoch (as ``lossexp train --resume RUN_ID``);
* FAILED (a non-finite loss, an exception): not run again, the job fails with one line — unless
  ``--retry-failed``: then, as a child stopped before its first checkpoint, it trains afresh as a new
  child and the old one is tagged ``lossexp.retried`` (the parent's summary leaves it out);
* no child: trains as usual.

No TensorFlow import.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from lossexp.sweeps.grid import job_digest
from lossexp.sweeps.job import JOB_KEY_TAG

RETRY_FLAG = "--retry-failed"
#: set for the launching process: the parent run to reopen, and whether failed jobs run again
ENV = "LOSSEXP_RESUME_SWEEP"
RETRY_ENV = "LOSSEXP_RETRY_FAILED"
#: the parent's task overrides (JSON list), and each child's own (JSON list, the injected ones left out)
TASK_OVERRIDES_TAG = "sweep.task_overrides"
#: on the parent: the grid its config defined (``hydra.sweeper.params`` as a JSON list of ``key=values``)
PARAMS_TAG = "sweep.params"
#: on the parent: how many times it was reopened, whether this attempt reruns failed jobs
RESUMES_TAG = "sweep.resumes"
RETRY_TAG = "sweep.retry_failed"
GRID_SWEEPER = "BasicSweeper"
STOPPED = ("KILLED", "RUNNING")


class FailedBefore(RuntimeError):
    """A job whose child run FAILED in an earlier attempt of the sweep, not run again."""


def reopen(uri: str, parent_id: str, tags: Dict[str, str], retry_failed: bool) -> None:
    """The launching process takes the parent over: RUNNING again with this attempt's ``tags`` (the
    first attempt's ``sweep.dir`` kept, this one's as ``sweep.resume_dir``), and the children a dead
    sweep left RUNNING ended KILLED (their processes are gone:
    :func:`lossexp.sweeps.resume_check.check_parent`)."""
    from lossexp.sweeps.parent import children, reopen_parent
    from lossexp.tracking import store

    attempt = {key: value for key, value in tags.items() if key != "sweep.dir"}
    reopen_parent(uri, parent_id, {**attempt, "sweep.resume_dir": tags["sweep.dir"],
                                   RETRY_TAG: str(retry_failed).lower()})
    client = store.open_client(uri)
    for child in children(client, parent_id):
        if child.info.status == "RUNNING":
            store.set_tag(client, child.info.run_id, "error", "the sweep was interrupted before this job ended")
            store.end_run(client, child.info.run_id, "KILLED")


@dataclass
class EarlierAttempt:
    """What a job of a resumed sweep does: return ``objective`` (it finished before), or continue
    run ``run_id`` in ``directory`` (the run's own, where its checkpoint is)."""

    objective: Optional[Union[float, List[float]]] = None
    run_id: Optional[str] = None
    directory: Optional[Path] = None


def _job_overrides() -> List[str]:
    from hydra.core.hydra_config import HydraConfig

    from lossexp.sweeps.job import INJECTED_PREFIXES

    return [o for o in HydraConfig.get().overrides.task if not o.startswith(INJECTED_PREFIXES)]


def earlier_attempt(config: Any, resolved: Dict[str, Any]) -> Optional[EarlierAttempt]:
    """This job's earlier attempt in a resumed grid sweep (see the module docstring); None: train it as
    usual. ``config`` is the job's validated config, ``resolved`` the same as a mapping."""
    from hydra.core.hydra_config import HydraConfig

    if not (config.tracking.enabled and config.tracking.parent_run_id and HydraConfig.initialized()):
        return None
    from lossexp.sweeps.objective import objective_keys, objectives
    from lossexp.sweeps.parent import RETRIED_TAG, tagged_children
    from lossexp.tracking import resume, store
    from lossexp.tracking.reaper import REASON_TAG
    from lossexp.training import checkpoint_files

    uri = store.resolve_uri(config.tracking.uri, Path(HydraConfig.get().runtime.cwd))
    client = store.open_client(uri)
    parent = store.retrying(lambda: client.get_run(config.tracking.parent_run_id))
    parent_tags = parent.data.tags
    if RESUMES_TAG not in parent_tags or parent_tags.get("sweep.sweeper") != GRID_SWEEPER:
        return None
    earlier = [run for run in tagged_children(client, parent, JOB_KEY_TAG, job_digest(_job_overrides()),
                                              order_by=["attributes.start_time ASC"])
               if run.data.tags.get(RETRIED_TAG) != "true"]
    if not earlier:
        return None
    run = earlier[-1]
    name, run_id, status = run.info.run_name, run.info.run_id, run.info.status
    if status == "FINISHED":
        print(f"lossexp: job {name} FINISHED in run {run_id} before: not run again")
        values = [run.data.metrics.get(key, math.nan)
                  for key in objective_keys([m for m, _ in objectives(config.objective)])]
        return EarlierAttempt(objective=values[0] if len(values) == 1 else values)
    stopped = status in STOPPED or REASON_TAG in run.data.tags  # interrupted, or reaped after a kill -9
    if not stopped and parent_tags.get(RETRY_TAG) != "true":
        why = run.data.tags.get("error", "").splitlines()[0][:300] if run.data.tags.get("error") else "no error recorded"
        raise FailedBefore(f"job {name} FAILED in run {run_id} before ({why}): not run again "
                           f"({RETRY_FLAG} runs it again)")
    directory = run.data.tags.get(checkpoint_files.TAG)
    progress = checkpoint_files.progress(Path(directory)) if stopped and directory else None
    if progress is not None and progress["epochs"] < config.trainer.epochs:
        resume.check_same_config(run_id, uri, resolved)
        print(f"lossexp: job {name} continues run {run_id} from epoch {progress['epochs']}")
        return EarlierAttempt(run_id=run_id, directory=Path(directory).parent)
    store.set_tag(client, run_id, RETRIED_TAG, "true")  # trained afresh as a new child; this one is not counted
    print(f"lossexp: job {name} runs again as a new run (run {run_id} {status}"
          f"{' without a checkpoint' if stopped else ''})")
    return None
