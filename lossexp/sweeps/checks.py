"""What an Optuna sweep (``hydra/sweeper=lossexp_optuna``) checks before anything runs.

:func:`check_sweep` (no TensorFlow; the CLI's precheck calls it with the first job's composed
config): the sampler and pruner names, pruning with several objectives, the search space (each
key exists in the config; ranges are valid; the config accepts both ends of every range, which it
returns for the precheck to build: a component's own option ranges), and a
study resumed by name (same directions; not held by a live sweep). :func:`check_objectives_recorded`
(TensorFlow) trains the first job's network for one step and checks that every objective metric is
among what a run records (``val_loss`` or what stands in for it) — a misspelled second objective, or
``loss`` of a regime that names its losses per player (a GAN's ``loss/generator``), would otherwise fail
each trial after it trained. Each mistake is a one-line :class:`~lossexp.errors.ConfigError`.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, List, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf

from lossexp.errors import ConfigError, invalid_value
from lossexp.sweeps import search_space, study as studies
from lossexp.sweeps.objective import DEFAULT_METRIC, ObjectiveMissing, objective_value, objectives
from lossexp.sweeps.optuna_sweep import is_optuna_sweep, location

_ABSENT = object()


def _check_key(cfg: DictConfig, key: str) -> None:
    """A search-space key names a config value (``+key`` adds one and is not checked)."""
    if key.startswith("+") or OmegaConf.select(cfg, key, default=_ABSENT) is not _ABSENT:
        return
    parent_key = key.rpartition(".")[0]
    while parent_key and not isinstance(OmegaConf.select(cfg, parent_key, default=None), DictConfig):
        parent_key = parent_key.rpartition(".")[0]  # up to the deepest section that exists
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    siblings = sorted(f"{parent_key}.{k}" if parent_key else str(k) for k in parent.keys() if k != "hydra") \
        if isinstance(parent, DictConfig) else []
    valid = f"valid keys are {', '.join(siblings)}" if siblings else f"{parent_key or 'the config'} has no keys"
    raise ConfigError(f"Unknown key {key} in hydra.sweeper.params: {valid}")


def check_sweep(cfg: DictConfig, overrides: Sequence[str],
                compose_job: Callable[[List[str]], Any]) -> List[Tuple[List[str], List[str], Any]]:
    """Raise :class:`ConfigError` for the first mistake of an Optuna sweep (see the module docstring);
    return the search space's ends, each (its overrides, the job's overrides, its validated config),
    for the precheck to build (a component's own option ranges: an end it refuses failed a trial
    mid-sweep). Nothing for another sweeper.

    ``cfg`` is a job's composed config (with ``hydra``), ``overrides`` the command line's, and
    ``compose_job(overrides)`` composes and validates one job, returning its config."""
    if not is_optuna_sweep(cfg):
        return []
    sweeper = cfg.hydra.sweeper
    studies.check_names(str(sweeper.sampler), str(sweeper.pruner))
    pairs = objectives(cfg.objective)
    if len(pairs) > 1 and str(sweeper.pruner) != "none":
        raise ConfigError(f"Invalid value for hydra.sweeper.pruner: expected none with several objectives "
                          f"(objective.metrics: {', '.join(m for m, _ in pairs)}; Optuna prunes one objective), "
                          f"got {str(sweeper.pruner)!r}")
    for key, low in (("n_trials", 1), ("n_jobs", 1)):
        if int(sweeper[key]) < low:
            raise ConfigError(f"Invalid value for hydra.sweeper.{key}: expected an integer >= {low}, "
                              f"got {sweeper[key]}")
    if not 0.0 <= float(sweeper.max_failure_rate) <= 1.0:
        raise ConfigError(f"Invalid value for hydra.sweeper.max_failure_rate: expected 0.0 <= rate <= 1.0, "
                          f"got {sweeper.max_failure_rate}")
    params = OmegaConf.to_container(sweeper.params, resolve=True) if sweeper.get("params") else {}
    space = search_space.parse(params, [o for o in overrides if not o.startswith("hydra.")])
    for key in space.distributions:
        _check_key(cfg, key)
    studies.make_pruner(str(sweeper.pruner), sweeper.get("pruner_options"))  # their options, before a job runs
    studies.make_sampler(str(sweeper.sampler), sweeper.get("sampler_options"), sweeper.get("seed"),
                         space.grid() if str(sweeper.sampler) == "grid" else None)
    fixed = [o for o in overrides if not _is_sweep(o)]
    checked = []
    for ends in search_space.bounds(space):
        try:
            checked.append((ends, fixed + ends, compose_job(fixed + ends)))
        except ConfigError as error:
            raise ConfigError(f"{error} (at an end of hydra.sweeper.params: {' '.join(ends)})") from None
    if sweeper.get("study_name"):
        url, name = location(cfg)
        studies.check_directions(url, name, [d for _, d in pairs])
        _check_not_held(cfg, name, url)
    return checked


def _is_sweep(override: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).is_sweep_override()


def _check_not_held(cfg: DictConfig, name: str, url: str) -> None:
    """A study continues in one sweep at a time: refuse while its parent run is held by a live process."""
    from lossexp.sweeps.parent import find_study_parent
    from lossexp.tracking import store
    from lossexp.tracking.heartbeat import TAG
    from lossexp.tracking.reachability import sqlite_path
    from lossexp.tracking.reaper import limit

    tracking = cfg.get("tracking") or {}
    if not tracking.get("enabled", True):
        return
    uri = store.resolve_uri(tracking.get("uri"), Path(os.getcwd()))
    if store.is_local_sqlite(uri) and not sqlite_path(uri).exists():
        return
    parent = find_study_parent(uri, str(tracking.get("experiment", "lossexp")),
                               {"optuna.study": name, "optuna.storage": url})
    if parent is None or parent.info.status != "RUNNING" or TAG not in parent.data.tags:
        return
    tags = parent.data.tags
    silent = time.time() - float(tags[TAG])
    if silent > limit(parent, float(tracking.get("stale_after_s", 300))):
        return  # its process died long ago
    host, pid = tags.get("lossexp.launcher.host"), int(tags.get("lossexp.launcher.pid", "0") or 0)
    if host == socket.gethostname() and not _alive(pid):
        return  # its process died (SIGKILL) on this machine
    raise ConfigError(f"Invalid value for hydra.sweeper.study_name: study {name!r} is being run by sweep "
                      f"{parent.info.run_id} (process {pid} on {host}, heartbeat {silent:.0f} s ago); "
                      "wait for it, or choose another study name")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_objectives_recorded(config) -> None:
    """Every objective metric, and early stopping's ``trainer.monitor``, is one a run of ``config`` records
    (TensorFlow: one training step and one validation step, with the training regime's own callbacks,
    e.g. the ring's scores); ``val_loss`` may stand for the regime's fallback
    (:meth:`~lossexp.training.trainer.Trainer.fallback_objective`) as an objective, not as a monitor
    (early stopping reads the epoch's logs: a misspelled monitor failed the run at its first epoch's end).

    Not trained for what the regime always records (:attr:`~lossexp.training.trainer.Trainer.records`:
    the supervised regime's ``loss``, for which ``val_loss`` falls back)."""
    from lossexp.training.trainer import regime, regime_name

    records = set(regime(regime_name(config.model.name)).records)
    monitor = config.trainer.monitor if config.trainer.patience and config.trainer.monitor not in records else None
    if "loss" in records:
        records.add(DEFAULT_METRIC)
    metrics = [m for m, _ in objectives(config.objective) if m not in records]
    if not metrics and monitor is None:
        return
    import dataclasses

    import keras

    from lossexp import quiet
    from lossexp.data import load
    from lossexp.project import user_code_errors
    from lossexp.training.trainer import for_config, regime_callbacks

    quiet.hide_per_run_retracing()  # one fit per distinct job: the sixth printed TensorFlow's retracing warning
    keras.backend.clear_session()
    # its gradient diagnostics are no metric of the history, and a GAN's would trace its sampled step too
    config = dataclasses.replace(config, tracking=dataclasses.replace(config.tracking, gradients=False))
    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    model = trainer.build(data)
    arguments = trainer.fit_arguments(data)
    if arguments.get("validation_data") is not None:
        arguments["validation_steps"] = 1
    recorded = model.fit(**arguments, epochs=1, steps_per_epoch=1, verbose=0,
                         callbacks=regime_callbacks(trainer, model, data)).history
    keras.backend.clear_session()
    if monitor is not None and monitor not in recorded:
        raise invalid_value("trainer.monitor", "a metric the run records at each epoch's end: "
                            + ", ".join(sorted(recorded)), monitor)
    key = "objective.metrics" if len(objectives(config.objective)) > 1 else "objective.metric"
    for metric in metrics:
        try:
            with user_code_errors("computing the run's objective"):
                objective_value(recorded, metric, trainer.fallback_objective)
        except ObjectiveMissing:
            instead = " (nor loss, nor a fallback of its training regime)" if metric == DEFAULT_METRIC else ""
            raise ConfigError(f"Invalid value for {key}: {metric!r} is not recorded by this run{instead}; "
                              f"valid choices are {', '.join(sorted(recorded))}") from None
