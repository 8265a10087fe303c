"""The Optuna study behind ``hparams_search=…``: where it lives, how it samples and prunes, and how
it picks up after a sweep that died.

* **Storage.** ``hydra.sweeper.storage`` (any Optuna storage URL), by default SQLite beside the
  tracking store (``outputs/optuna.db`` next to ``outputs/mlflow.db``; under ``<cwd>/outputs``
  when tracking goes to a server). Jobs in other processes (joblib workers, submitit) report
  their epochs through it, so it must be reachable from every job: across machines, a database
  server's URL (``postgresql://…``).
* **Name.** ``hydra.sweeper.study_name``; by default a fresh name per sweep
  (``<experiment>-<sweep date>_<time>``). Running the same command with a study's name continues
  it: ``n_trials`` counts the study's trials that ended (complete, pruned or failed), so finished
  trials never run again.
* **Samplers and pruners** by name, with options (``sampler_options``, ``pruner_options``) passed
  to Optuna's constructors over lossexp's defaults (:data:`SAMPLER_DEFAULTS`, :data:`PRUNER_DEFAULTS`).
* **Abandoned trials.** A trial left RUNNING by a sweep that was killed is failed (user attribute
  ``lossexp.abandoned``) and its parameters enqueued again, so the next trial re-runs it.
"""
from __future__ import annotations

import inspect
import os
import socket
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from lossexp.errors import ConfigError, unknown_name

SAMPLERS = {
    "tpe": "TPESampler", "gp": "GPSampler", "cmaes": "CmaEsSampler", "random": "RandomSampler",
    "grid": "GridSampler", "nsgaii": "NSGAIISampler",
}
PRUNERS = {
    "none": "NopPruner", "median": "MedianPruner", "percentile": "PercentilePruner",
    "successive_halving": "SuccessiveHalvingPruner", "hyperband": "HyperbandPruner",
}
#: lossexp's defaults, for sweeps of tens of trials (Optuna's own are tuned for hundreds)
SAMPLER_DEFAULTS: Dict[str, Dict[str, Any]] = {"tpe": {"multivariate": True, "n_startup_trials": 5}}
PRUNER_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "median": {"n_startup_trials": 3},
    "percentile": {"percentile": 25.0, "n_startup_trials": 3},
}
#: trial user attributes written by lossexp
ABANDONED = "lossexp.abandoned"
RETRY_OF = "lossexp.retry_of"
LAUNCHER = "lossexp.launcher"
RUN_ID = "mlflow.run_id"
PRUNED_EPOCH = "lossexp.pruned_epoch"
SQLITE_TIMEOUT_S = 60


def default_storage(tracking_uri: Optional[str], base_dir: Path) -> str:
    """SQLite beside a local tracking store, else under ``base_dir/outputs``."""
    from lossexp.tracking.reachability import sqlite_path
    from lossexp.tracking.store import is_local_sqlite

    local = tracking_uri is not None and is_local_sqlite(tracking_uri)
    folder = sqlite_path(tracking_uri).parent if local else base_dir / "outputs"
    return f"sqlite:///{(folder / 'optuna.db').resolve()}"


def resolve_storage(configured: Optional[str], tracking_uri: Optional[str], base_dir: Path) -> str:
    """``hydra.sweeper.storage`` (a relative SQLite path made absolute against ``base_dir``) or the default."""
    if not configured:
        return default_storage(tracking_uri, base_dir)
    if configured.startswith("sqlite:///") and not configured.startswith("sqlite:////"):
        return f"sqlite:///{(base_dir / configured[len('sqlite:///'):]).resolve()}"
    return configured


def default_study_name(experiment: str, sweep_dir: str) -> str:
    """``lossexp-2026-12-02_04-30-00``: one fresh study per sweep unless a name is given."""
    path = Path(sweep_dir)
    return f"{experiment}-{path.parent.name}_{path.name}"


def storage(url: str) -> Any:
    """Optuna's storage for ``url``; SQLite waits for a busy database instead of failing."""
    import optuna

    kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite:") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def _options(kind: str, name: str, cls: Any, defaults: Mapping[str, Any], given: Optional[Mapping[str, Any]]) -> Dict:
    options = {**defaults, **dict(given or {})}
    accepted = set(inspect.signature(cls).parameters) - {"search_space"}
    for option in options:
        if option not in accepted:
            raise ConfigError(f"Unknown key hydra.sweeper.{kind}_options.{option} for hydra.sweeper.{kind}={name}: "
                              f"valid keys are {', '.join(sorted(accepted))}")
    return options


def check_names(sampler: str, pruner: str) -> None:
    """Unknown sampler or pruner names fail before Optuna is imported."""
    if sampler not in SAMPLERS:
        raise unknown_name("hydra.sweeper.sampler", sampler, SAMPLERS)
    if pruner not in PRUNERS:
        raise unknown_name("hydra.sweeper.pruner", pruner, PRUNERS)


def make_sampler(name: str, options: Optional[Mapping[str, Any]], seed: Optional[int],
                 grid: Optional[Mapping[str, Sequence[Any]]] = None) -> Any:
    """The sampler called ``name``; ``grid`` is the grid sampler's search space."""
    import optuna

    check_names(name, "none")
    cls = getattr(optuna.samplers, SAMPLERS[name])
    kwargs = _options("sampler", name, cls, SAMPLER_DEFAULTS.get(name, {}), options)
    if seed is not None:
        kwargs.setdefault("seed", seed)
    if name == "gp":
        try:
            import torch  # noqa: F401  (GPSampler runs on PyTorch)
        except ImportError:
            others = ", ".join(sorted(set(SAMPLERS) - {"gp"}))
            raise ConfigError(f"hydra.sweeper.sampler=gp needs PyTorch: pip install 'lossexp[gp]' "
                              f"(valid samplers without it: {others})") from None
    if name == "grid":
        return cls(dict(grid or {}), **kwargs)
    return cls(**kwargs)


def make_pruner(name: str, options: Optional[Mapping[str, Any]]) -> Any:
    import optuna

    check_names("tpe", name)
    cls = getattr(optuna.pruners, PRUNERS[name])
    return cls(**_options("pruner", name, cls, PRUNER_DEFAULTS.get(name, {}), options))


def existing_directions(url: str, name: str) -> Optional[List[str]]:
    """The directions of study ``name`` in the storage at ``url``; None when it does not exist
    (a SQLite file that does not exist yet is not created)."""
    from lossexp.tracking.reachability import sqlite_path

    if url.startswith("sqlite:///") and not sqlite_path(url).exists():
        return None
    import optuna

    for summary in optuna.get_all_study_summaries(storage(url), include_best_trial=False):
        if summary.study_name == name:
            return [d.name.lower() for d in summary.directions]
    return None


def check_directions(url: str, name: str, directions: Sequence[str]) -> None:
    """A study resumed by name must optimise in the same directions."""
    found = existing_directions(url, name)
    if found is not None and list(found) != list(directions):
        raise ConfigError(f"Invalid value for hydra.sweeper.study_name: study {name!r} in {url} optimises "
                          f"{', '.join(found)}; this sweep's objective.directions are {', '.join(directions)} "
                          "(choose another study name, or the study's directions)")


def open_study(url: str, name: str, directions: Sequence[str], sampler: Any = None, pruner: Any = None) -> Any:
    """Create the study, or load it when it exists (directions checked)."""
    import optuna

    check_directions(url, name, directions)
    return optuna.create_study(storage=storage(url), study_name=name, directions=list(directions),
                               sampler=sampler, pruner=pruner, load_if_exists=True)


def launcher_identity() -> Dict[str, Any]:
    """Which process asked a trial (so that a later sweep can tell it died)."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def counted(trials: Sequence[Any]) -> int:
    """Trials that count towards ``n_trials``: ended, and not abandoned by a dead sweep."""
    from optuna.trial import TrialState

    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for t in trials if t.state in ended and not t.user_attrs.get(ABANDONED))


def recover_abandoned(study: Any) -> List[Any]:
    """Fail the trials a dead sweep left RUNNING and enqueue their parameters again; returns them.

    Called by the sweep that holds the study (its precheck refused to start while another live
    sweep held it), so every RUNNING trial at that point belongs to a sweep that is gone.
    """
    from optuna.trial import TrialState

    abandoned = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in abandoned:
        study._storage.set_trial_user_attr(trial._trial_id, ABANDONED, True)
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        study.enqueue_trial(dict(trial.params), user_attrs={RETRY_OF: trial.number})
    return abandoned
