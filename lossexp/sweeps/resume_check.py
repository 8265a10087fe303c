"""The command-line checks of ``lossexp train -m OVERRIDES --resume PARENT_ID [--retry-failed]``
(:mod:`lossexp.sweeps.resume_sweep` is what the sweep's jobs then do).

The command must ask for the sweep the parent ran (its task overrides, tag ``sweep.task_overrides``,
and the grid its config defined in ``hydra.sweeper.params``, tag ``sweep.params``: the same keys and
the same values, in any order; ``tracking.uri`` aside). :func:`check_parent` checks
that (one line naming what differs), that the parent is a grid sweep's that stopped, and that no live
process holds the parent or one of its children, before Hydra starts anything.

No TensorFlow import.
"""
from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from lossexp.errors import ConfigError, invalid_value
from lossexp.sweeps import ablation
from lossexp.sweeps.job import JOB_OVERRIDES_TAG, PARENT_TAG
from lossexp.sweeps.grid import grid, sweep_grid
from lossexp.sweeps.resume_sweep import GRID_SWEEPER, PARAMS_TAG, RETRY_FLAG, TASK_OVERRIDES_TAG

FLAG = "--resume"


def split_retry(args: Sequence[str]) -> Tuple[bool, List[str]]:
    """(whether ``--retry-failed`` was given, the other arguments)."""
    return RETRY_FLAG in args, [a for a in args if a != RETRY_FLAG]



def _configured(params: Sequence[str], task_overrides: Sequence[str]) -> Set[str]:
    """The keys of a sweep's grid whose values come from ``hydra.sweeper.params`` (the command line's win)."""
    return set(grid(params)) - set(grid(task_overrides))


Grid = Dict[str, Tuple[str, ...]]


def _difference(ran: Grid, asked: Grid, ran_configured: Set[str] = frozenset(),
                asked_configured: Set[str] = frozenset()) -> Optional[str]:
    """What the command's sweep changes in the parent's, said of its first key (None: the same); a
    key's values that a config's ``hydra.sweeper.params`` gave are said to come from there."""
    def shown(key: str, values: Tuple[str, ...], configured: Set[str]) -> str:
        return f"{key}={','.join(values)}" + (" (in hydra.sweeper.params)" if key in configured else "")

    for key in sorted(set(ran) | set(asked)):
        if key not in asked:
            return f"this command leaves out {shown(key, ran[key], ran_configured)}"
        if key not in ran:
            return f"this command adds {shown(key, asked[key], asked_configured)}"
        if ran[key] != asked[key]:
            return (f"it ran {shown(key, ran[key], ran_configured)}, this command asks for "
                    f"{shown(key, asked[key], asked_configured)}")
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
        from lossexp.tracking.reachability import check_usable_server

        check_usable_server(uri)
    client = store.open_client(uri)
    try:
        return client, client.get_run(run_id)
    except MlflowException:
        raise unknown from None


def check_not_a_parent(run_id: str, uri: str) -> None:
    """``--resume PARENT_ID`` without ``-m``: one line giving the command that continues the sweep."""
    _, run = _parent(run_id, uri)
    if run.data.tags.get("lossexp.role") == "sweep":
        raise invalid_value(FLAG, "a run, or with -m a sweep's parent run",
                            f"{run_id}, a sweep's parent: continue the sweep with {command_line(run.data.tags, run_id)}")


def command_line(tags: Dict[str, str], parent_id: str) -> str:
    """The command that continues the sweep whose parent has ``tags``: ``lossexp ablate … --resume
    PARENT_ID`` for an ablation, else ``lossexp train -m loss=a+b,c … --resume PARENT_ID``."""
    import shlex

    from lossexp.sweeps.naming import pretty_override

    if ablation.REQUEST_TAG in tags:
        return ablation.command_line(tags[ablation.REQUEST_TAG], parent_id)
    if TASK_OVERRIDES_TAG not in tags:  # recorded before: as the parent shows them
        return f"lossexp train -m {tags.get('sweep.overrides', '')} {FLAG} {parent_id}"
    shown = [pretty_override(o) if o.startswith("loss=") else o for o in json.loads(tags[TASK_OVERRIDES_TAG])]
    return f"lossexp train -m {' '.join(shlex.quote(o) for o in shown)} {FLAG} {parent_id}"


def check_parent(parent_id: str, uri: str, overrides: Sequence[str], params: Sequence[str] = (),
                 stale_after_s: float = 300.0, ablate: bool = False) -> None:
    """Raise a one-line :class:`ConfigError` unless ``parent_id`` is the parent of a grid sweep that
    stopped, whose sweep ``overrides`` (and ``params``, the grid the command's config defines in
    ``hydra.sweeper.params``) ask for again, and no live process holds it or its children. ``ablate``:
    the command is ``lossexp ablate``, which continues an ablation's parent and nothing else (an
    ablation continued by ``lossexp train -m`` would end without its table)."""
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
    if (ablation.REQUEST_TAG in tags) != ablate:
        expected, found = (("an ablation's parent run (lossexp ablate)", "a sweep of lossexp train -m") if ablate
                           else ("a sweep of lossexp train -m", "an ablation (lossexp ablate)"))
        raise invalid_value(FLAG, expected, f"{parent_id}, {found}: continue it with {command_line(tags, parent_id)}")
    if run.info.status == "RUNNING":
        holder = _holder(run, stale_after_s)
        if holder:
            raise invalid_value(FLAG, "a sweep that stopped", f"{parent_id}, still running ({holder})")
    ran_overrides = json.loads(tags[TASK_OVERRIDES_TAG])
    if PARAMS_TAG in tags:  # else recorded before the config's grid was: its command line alone is compared
        ran_params = json.loads(tags[PARAMS_TAG])
        difference = _difference(sweep_grid(ran_overrides, ran_params), sweep_grid(overrides, params),
                                 _configured(ran_params, ran_overrides), _configured(params, overrides))
    else:
        difference = _difference(grid(ran_overrides), grid(overrides))
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
