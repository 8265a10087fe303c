"""``lossexp train -m OVERRIDES --resume PARENT_ID [--retry-failed]``: continue a grid sweep that
stopped (Ctrl-C, SIGTERM, a crash, ``kill -9``) under the same parent run.

The command must ask for the sweep the parent ran (its task overrides, tag ``sweep.task_overrides``:
the same keys and the same values, in any order; ``tracking.uri`` aside). The CLI checks that
(:func:`check_parent`, one line naming what differs) and that no live process holds the parent or
one of its children, then the sweep callback reopens the parent (tag ``sweep.resumes``) and ends the
children a dead sweep left RUNNING as KILLED. Each job then finds the child of its own overrides
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

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

from lossexp.errors import ConfigError, invalid_value
from lossexp.sweeps.job import JOB_KEY_TAG, JOB_OVERRIDES_TAG, PARENT_TAG

FLAG = "--resume"
RETRY_FLAG = "--retry-failed"
#: set for the launching process: the parent run to reopen, and whether failed jobs run again
ENV = "LOSSEXP_RESUME_SWEEP"
RETRY_ENV = "LOSSEXP_RETRY_FAILED"
#: the parent's task overrides (JSON list), and each child's own (JSON list, the injected ones left out)
TASK_OVERRIDES_TAG = "sweep.task_overrides"
#: on the parent: how many times it was reopened, whether this attempt reruns failed jobs
RESUMES_TAG = "sweep.resumes"
RETRY_TAG = "sweep.retry_failed"
GRID_SWEEPER = "BasicSweeper"
#: overrides that may differ between the sweep and its resumption: where the store is
FREE_KEYS = ("tracking.uri",)
STOPPED = ("KILLED", "RUNNING")


class FailedBefore(RuntimeError):
    """A job whose child run FAILED in an earlier attempt of the sweep, not run again."""


def split_retry(args: Sequence[str]) -> Tuple[bool, List[str]]:
    """(whether ``--retry-failed`` was given, the other arguments)."""
    return RETRY_FLAG in args, [a for a in args if a != RETRY_FLAG]


def _canonical(overrides: Sequence[str]) -> List[Tuple[str, Tuple[str, ...]]]:
    """Each override as (key, its values as Hydra prints them): ``w=0.010,0.1`` → (``w``, (0.01, 0.1))."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as exc:
        raise ConfigError(f"Invalid override: {str(exc).splitlines()[0]}") from None
    return [(o.get_key_element(), tuple(o.sweep_string_iterator()) if o.is_sweep_override()
             else (o.get_value_element_as_str(),)) for o in parsed]


def grid(overrides: Sequence[str]) -> Dict[str, Tuple[str, ...]]:
    """The sweep ``overrides`` ask for: each key's values, in order of value (``hydra.*`` and
    :data:`FREE_KEYS` left out); the last of a key given twice."""
    found: Dict[str, Tuple[str, ...]] = {}
    for key, values in _canonical([o for o in overrides if not o.startswith(("hydra.", "hydra/"))]):
        if key.lstrip("+~") not in FREE_KEYS:
            found[key] = tuple(sorted(set(values)))
    return found


def job_key(overrides: Sequence[str]) -> FrozenSet[Tuple[str, str]]:
    """What identifies one job of a sweep: its overrides' keys and values, in any order."""
    return frozenset((key, values[0]) for key, values in grid(overrides).items())


def job_digest(overrides: Sequence[str]) -> str:
    """:func:`job_key` as a tag value (``sweep.job_key``): a job's earlier attempt is one filtered search
    away — reading every child and parsing its overrides took 0.7 s of CPU a job at 400 children."""
    return hashlib.sha1(json.dumps(sorted(job_key(overrides))).encode()).hexdigest()


def _difference(ran: Dict[str, Tuple[str, ...]], asked: Dict[str, Tuple[str, ...]]) -> Optional[str]:
    """What the command's sweep changes in the parent's, said of its first key (None: the same)."""
    def shown(key: str, values: Tuple[str, ...]) -> str:
        return f"{key}={','.join(values)}"

    for key in sorted(set(ran) | set(asked)):
        if key not in asked:
            return f"this command leaves out {shown(key, ran[key])}"
        if key not in ran:
            return f"this command adds {shown(key, asked[key])}"
        if ran[key] != asked[key]:
            return f"it ran {shown(key, ran[key])}, this command asks for {shown(key, asked[key])}"
    return None


def _holder(run: Any, stale_after_s: float) -> Optional[str]:
    """How the process that holds a RUNNING run (a sweep's launcher, a job) shows it lives: its heartbeat
    is fresh and, on this host, its process exists. None: it is gone."""
    from lossexp.tracking.heartbeat import PROCESS_TAG, TAG, process_is_gone
    from lossexp.tracking.reaper import limit

    silent = time.time() - float(run.data.tags.get(TAG, 0))
    if silent > limit(run, stale_after_s) or process_is_gone(run):
        return None
    return f"process {run.data.tags.get(PROCESS_TAG, 'unknown')}, heartbeat {silent:.0f} s ago"


def _parent(run_id: str, uri: str) -> Tuple[Any, Any]:
    """(a client of the store at ``uri``, its run ``run_id``); one line if there is none."""
    from mlflow.exceptions import MlflowException

    from lossexp.tracking import store

    unknown = ConfigError(f"Unknown run {run_id!r} for {FLAG}: no such run in {uri}")
    if store.is_local_sqlite(uri) and not store.sqlite_path(uri).exists():
        raise unknown
    if uri.startswith(("http://", "https://")):  # answers, takes the credentials: one line in seconds
        from lossexp.tracking.reachability import check_access, check_server

        check_server(uri)
        check_access(uri)
    client = store.open_client(uri)
    try:
        return client, client.get_run(run_id)
    except MlflowException:
        raise unknown from None


def check_not_a_parent(run_id: str, uri: str) -> None:
    """``--resume PARENT_ID`` without ``-m``: one line giving the command that continues the sweep."""
    _, run = _parent(run_id, uri)
    tags = run.data.tags
    if tags.get("lossexp.role") == "sweep":
        command = (command_line(json.loads(tags[TASK_OVERRIDES_TAG]), run_id) if TASK_OVERRIDES_TAG in tags
                   else f"lossexp train -m {tags.get('sweep.overrides', '')} {FLAG} {run_id}")
        raise invalid_value(FLAG, "a run, or with -m a sweep's parent run",
                            f"{run_id}, a sweep's parent: continue the sweep with {command}")


def command_line(task_overrides: Sequence[str], parent_id: str) -> str:
    """``lossexp train -m loss=a+b,c … --resume PARENT_ID``: the command that continues the sweep."""
    import shlex

    from lossexp.sweeps.naming import pretty_override

    shown = [pretty_override(o) if o.startswith("loss=") else o for o in task_overrides]
    return f"lossexp train -m {' '.join(shlex.quote(o) for o in shown)} {FLAG} {parent_id}"


def check_parent(parent_id: str, uri: str, overrides: Sequence[str], stale_after_s: float = 300.0) -> None:
    """Raise a one-line :class:`ConfigError` unless ``parent_id`` is the parent of a grid sweep that
    stopped, whose sweep ``overrides`` ask for again, and no live process holds it or its children."""
    from lossexp.sweeps.parent import children

    client, run = _parent(parent_id, uri)
    tags = run.data.tags
    if tags.get("lossexp.role") != "sweep":
        what = (f"a job of sweep {tags[PARENT_TAG]} (give the parent's id)" if PARENT_TAG in tags
                else "a single run (drop -m to continue it)")
        raise invalid_value(FLAG, "a sweep's parent run with -m (lossexp runs shows it above its children)",
                            f"{parent_id}, {what}")
    if tags.get("sweep.sweeper") != GRID_SWEEPER:
        raise invalid_value(FLAG, "the parent of a grid sweep (an Optuna study continues with "
                            f"hydra.sweeper.study_name={tags.get('optuna.study', 'NAME')})", parent_id)
    if TASK_OVERRIDES_TAG not in tags:
        raise invalid_value(FLAG, "a sweep recorded with its jobs' overrides (tag sweep.task_overrides)",
                            f"{parent_id}, recorded before lossexp could continue a sweep")
    if run.info.status == "FINISHED":
        raise invalid_value(FLAG, "a sweep that stopped (KILLED or FAILED)",
                            f"{parent_id}, FINISHED: every job finished, nothing to continue")
    if run.info.status == "RUNNING":
        holder = _holder(run, stale_after_s)
        if holder:
            raise invalid_value(FLAG, "a sweep that stopped", f"{parent_id}, still running ({holder})")
    difference = _difference(grid(json.loads(tags[TASK_OVERRIDES_TAG])), grid(overrides))
    if difference:
        raise invalid_value(FLAG, "the sweep its parent ran (the same keys and values; only tracking.uri may "
                            "differ)", f"{parent_id}: {difference}")
    jobs = children(client, parent_id)
    for child in jobs:
        holder = _holder(child, stale_after_s) if child.info.status == "RUNNING" else None
        if holder:
            raise invalid_value(FLAG, "a sweep none of whose jobs still trains",
                                f"{parent_id}: its job {child.info.run_name} (run {child.info.run_id}) is still "
                                f"running ({holder})")
    _check_same_config(uri, parent_id, next((c for c in jobs if JOB_OVERRIDES_TAG in c.data.tags
                                             and c.info.status == "FINISHED"), None))  # its config.yaml logged


def _check_same_config(uri: str, parent_id: str, child: Any) -> None:
    """The same overrides compose what ``child`` trained: not so after the sweep's ``conf/`` (or the
    project's) changed, or for a sweep started with ``--from-run`` (one line naming the first key)."""
    if child is None:
        return
    if child.data.tags.get("lossexp.from_run"):
        raise invalid_value(FLAG, "a sweep of lossexp's or the project's conf/", f"{parent_id}, a sweep of run "
                            f"{child.data.tags['lossexp.from_run']}'s config (--from-run), which --resume cannot "
                            "compose again")
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from lossexp import CONF_DIR
    from lossexp.tracking import resume

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="lossexp_resume"):
        cfg = compose("config", overrides=json.loads(child.data.tags[JOB_OVERRIDES_TAG]))
        resolved = OmegaConf.to_container(cfg, resolve=True)
    try:
        resume.check_same_config(child.info.run_id, uri, resolved)
    except ConfigError as error:
        raise ConfigError(f"{error}; its sweep {parent_id} cannot continue with this config") from None


def reopen(uri: str, parent_id: str, tags: Dict[str, str], retry_failed: bool) -> None:
    """The launching process takes the parent over: RUNNING again with this attempt's ``tags`` (the
    first attempt's ``sweep.dir`` kept, this one's as ``sweep.resume_dir``), and the children a dead
    sweep left RUNNING ended KILLED (their processes are gone: :func:`check_parent`)."""
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
    from lossexp.sweeps.parent import RETRIED_TAG
    from lossexp.tracking import resume, store
    from lossexp.tracking.reaper import REASON_TAG
    from lossexp.training import checkpoint_files

    uri = store.resolve_uri(config.tracking.uri, Path(HydraConfig.get().runtime.cwd))
    client = store.open_client(uri)
    parent = store.retrying(lambda: client.get_run(config.tracking.parent_run_id))
    parent_tags = parent.data.tags
    if RESUMES_TAG not in parent_tags or parent_tags.get("sweep.sweeper") != GRID_SWEEPER:
        return None
    query = (f"tags.`{PARENT_TAG}` = '{parent.info.run_id}' and "
             f"tags.`{JOB_KEY_TAG}` = '{job_digest(_job_overrides())}'")
    earlier = [run for run in store.retrying(lambda: client.search_runs(
        [parent.info.experiment_id], query, order_by=["attributes.start_time ASC"]))
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
