"""The Optuna sweep loop, in the launching process: ask a batch of trials, launch them as Hydra
jobs, tell the study how each ended, tag each child run with its trial's state.

Each job gets its trial's sampled values as overrides, plus ``hydra.sweeper.trial=<number>``;
the study's storage and name reach every job through ``hydra.overrides.hydra`` (as the sweep
callback hands jobs the parent run). A job reports its objective at every epoch end through the
storage (:mod:`lossexp.sweeps.pruning`) and stops when the pruner says so; it records that in the
trial (``lossexp.pruned_epoch``), and the trial is told PRUNED here. Child job numbers are trial
numbers, so ``#7`` is trial 7 across resumed runs of one study.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from lossexp.sweeps import search_space, study as studies
from lossexp.sweeps.objective import objectives

log = logging.getLogger(__name__)
STATE_TAG = "optuna.state"
OPTUNA_SWEEPER = "hydra_plugins.lossexp_sweeper"


def is_optuna_sweep(config: DictConfig) -> bool:
    return str(config.hydra.sweeper.get("_target_", "")).startswith(OPTUNA_SWEEPER)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def location(config: DictConfig, base_dir: Optional[Path] = None) -> Tuple[str, str]:
    """(storage URL, study name) of an Optuna sweep's config, defaults resolved."""
    from lossexp.tracking import store

    base_dir = base_dir or Path(os.getcwd())
    tracking = config.get("tracking") or {}
    tracking_uri = store.resolve_uri(tracking.get("uri"), base_dir) if tracking.get("enabled", True) else None
    sweeper = config.hydra.sweeper
    url = studies.resolve_storage(sweeper.get("storage"), tracking_uri, base_dir)
    name = sweeper.get("study_name") or studies.default_study_name(str(tracking.get("experiment", "lossexp")),
                                                                  str(config.hydra.sweep.dir))
    return url, str(name)


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


class OptunaSweep:
    """One run of an Optuna sweep (see the module docstring)."""

    def __init__(self, settings: Mapping[str, Any], hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.settings = {key: _plain(value) for key, value in settings.items()}
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)
        self.metrics = [metric for metric, _ in objectives(config.objective)]
        self.directions = [direction for _, direction in objectives(config.objective)]
        self._client: Any = None

    def run(self, arguments: List[str]) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        settings = self.settings
        studies.check_names(settings["sampler"], settings["pruner"])
        space = search_space.parse(settings.get("params"), arguments)
        url, name = location(self.config)
        study = studies.open_study(url, name, self.directions,
                                   pruner=studies.make_pruner(settings["pruner"], settings.get("pruner_options")))
        earlier = len(study.trials)
        for trial in studies.recover_abandoned(study):
            print(f"lossexp: trial #{trial.number} of study {name} was left RUNNING by a sweep that died: "
                  "failed, and its parameters asked again")
            self._tag_run(self._abandoned_run(trial, url, name), {STATE_TAG: "FAIL", "lossexp.retried": "true"},
                          end_failed="its sweep died; the trial was asked again")
        grid = space.grid() if settings["sampler"] == "grid" else None
        seed = settings.get("seed")
        # a resumed study reseeds by its size, so its random start does not propose the same points again
        seed = seed + earlier if seed is not None and earlier else seed
        study.sampler = studies.make_sampler(settings["sampler"], settings.get("sampler_options"), seed, grid)
        n_trials = int(settings["n_trials"])
        if grid is not None:
            size = 1
            for points in grid.values():
                size *= len(points)
            n_trials = min(n_trials, size)
        self._hand_jobs_the_study(url, name)
        print(f"lossexp: Optuna study {name} in {url} ({settings['sampler']} sampler, {settings['pruner']} pruner); "
              f"continue it with hydra.sweeper.study_name={name}")
        remaining = n_trials - studies.counted(study.trials)
        while remaining > 0:
            batch = min(max(int(settings["n_jobs"]), 1), remaining)
            trials = [study.ask(space.distributions) for _ in range(batch)]
            for trial in trials:
                trial.set_user_attr(studies.LAUNCHER, studies.launcher_identity())
            overrides = [space.trial_overrides(t.params) + [f"hydra.sweeper.trial={t.number}"] for t in trials]
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
            failures = self._tell(study, trials, returns)
            if failures and failures / len(returns) > float(settings["max_failure_rate"]):
                print(f"lossexp: the study stops: {failures} of its {len(returns)} trial(s) just run failed, more than "
                      f"hydra.sweeper.max_failure_rate={settings['max_failure_rate']} allows; once fixed, continue it "
                      f"with hydra.sweeper.study_name={name}", file=sys.stderr)
                for ret in returns:
                    ret.return_value  # re-raises the first failed job's exception, with its traceback
            remaining -= batch
        self._save_results(study)

    def _hand_jobs_the_study(self, url: str, name: str) -> None:
        """Every job composes ``hydra.overrides.hydra`` first: the study's storage and name go there."""
        with read_write(self.config.hydra.overrides):
            self.config.hydra.overrides.hydra = OmegaConf.to_container(self.config.hydra.overrides.hydra) + [
                f"hydra.sweeper.storage={_quote(url)}", f"hydra.sweeper.study_name={_quote(name)}"]
        with read_write(self.config.hydra.sweeper), open_dict(self.config.hydra.sweeper):
            self.config.hydra.sweeper.storage, self.config.hydra.sweeper.study_name = url, name

    def _tell(self, study: Any, trials: Sequence[Any], returns: Sequence[Any]) -> int:
        """Tell the study how each job ended; returns the number of failed jobs."""
        from hydra.core.utils import JobStatus
        from optuna.trial import TrialState

        failures = 0
        for trial, ret in zip(trials, returns):
            attrs = study._storage.get_trial(trial._trial_id).user_attrs  # what the job wrote
            values: Optional[List[float]] = None
            if ret.status != JobStatus.COMPLETED:
                state, failures = TrialState.FAIL, failures + 1
            elif attrs.get(studies.PRUNED_EPOCH) is not None:
                state = TrialState.PRUNED
            else:
                state, values = self._values(ret.return_value)
                failures += state == TrialState.FAIL
            try:
                frozen = study.tell(trial, values, state=state)
            except RuntimeError as error:  # the grid sampler stops the study once every point ran
                if "Study.stop" not in str(error):
                    raise
                frozen = study._storage.get_trial(trial._trial_id)
            self._tag_run(attrs.get(studies.RUN_ID), {STATE_TAG: frozen.state.name})
        return failures

    def _values(self, returned: Any) -> Tuple[Any, Optional[List[float]]]:
        from optuna.trial import TrialState

        try:
            values = [float(v) for v in (returned if isinstance(returned, (list, tuple)) else [returned])]
        except (TypeError, ValueError):
            log.warning("a job returned %r, not a number per objective: its trial FAILED", returned)
            return TrialState.FAIL, None
        if len(values) != len(self.directions):
            log.warning("a job returned %d values for %d objectives: its trial FAILED",
                        len(values), len(self.directions))
            return TrialState.FAIL, None
        return TrialState.COMPLETE, values

    def _tracking_uri(self) -> str:
        from lossexp.tracking import store

        return store.resolve_uri(self.config.tracking.get("uri"), Path(os.getcwd()))

    def _tracking_client(self) -> Any:
        from lossexp.tracking import store

        if self._client is None:
            self._client = store.open_client(self._tracking_uri())
        return self._client

    def _tracked(self) -> bool:
        return bool((self.config.get("tracking") or {}).get("enabled", True))

    def _abandoned_run(self, trial: Any, url: str, name: str) -> Optional[str]:
        """The child run of a trial that a dead sweep left RUNNING: the run its job wrote into the trial,
        else the study's child tagged with the trial's number (:func:`~lossexp.sweeps.parent.trial_child`)."""
        run_id = trial.user_attrs.get(studies.RUN_ID)
        if run_id or not self._tracked():
            return run_id
        from lossexp.sweeps.parent import STUDY_KEYS, trial_child

        experiment = str(self.config.tracking.get("experiment", "lossexp"))
        return trial_child(self._tracking_uri(), experiment, dict(zip(STUDY_KEYS, (name, url))), trial.number)

    def _tag_run(self, run_id: Optional[str], tags: Dict[str, str], end_failed: Optional[str] = None) -> None:
        """Tag a trial's child run (and end it FAILED when its sweep died with it RUNNING)."""
        if not run_id or not self._tracked():
            return
        from lossexp.tracking import store

        self._tracking_client()
        for key, value in tags.items():
            store.set_tag(self._client, run_id, key, value)
        if end_failed and store.retrying(lambda: self._client.get_run(run_id)).info.status == "RUNNING":
            store.set_tag(self._client, run_id, "error", end_failed)
            store.end_run(self._client, run_id, "FAILED")

    def _save_results(self, study: Any) -> None:
        """``optimization_results.yaml`` in the sweep directory, as hydra-optuna-sweeper wrote it."""
        from optuna.trial import TrialState

        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return
        if len(self.directions) == 1:
            results = {"name": "optuna", "study": study.study_name, "best_params": study.best_trial.params,
                       "best_value": study.best_trial.value}
        else:
            results = {"name": "optuna", "study": study.study_name, "metrics": self.metrics,
                       "solutions": [{"params": t.params, "values": t.values, "trial": t.number}
                                     for t in study.best_trials]}
        path = Path(str(self.config.hydra.sweep.dir)) / "optimization_results.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(results), path)
        print(f"lossexp: study results in {path}")
