"""One training run, from a composed config to an MLflow record.

``run(cfg)`` is the Hydra task function: it validates the config and calls :func:`execute`,
which the Python API (:mod:`lossexp.api`) calls too with a network, data or components of its
own. ``execute`` loads the data, asks the model's training regime
(:mod:`lossexp.training.trainer`) to build the compiled model — failing with a
:class:`~lossexp.errors.ConfigError` before any MLflow run exists — trains it with the recording
callbacks and records everything in one MLflow run. It never names a model: the regime decides
what is built, fed and logged beyond the common record.

The return value is the objective a sweeper optimises: the final value of ``objective.metric``
(default ``val_loss``; without validation, the regime's fallback). In a sweep the run is a child of
the sweep's parent run (see :mod:`lossexp.sweeps`).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from omegaconf import DictConfig, OmegaConf

import lossexp
from lossexp import project, quiet
from lossexp.config import LossexpConfig, validate
from lossexp.errors import ConfigError, invalid_value
from lossexp.project import user_code_errors
from lossexp.tracking import store


def composition(config: LossexpConfig) -> str:
    """``hist_avg+activity`` (``none`` without components)."""
    return "+".join(config.loss) or "none"


def _hydra_dirs() -> tuple[Path, Path]:
    """(directory lossexp was started from, this job's output directory)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        return Path(hydra_cfg.runtime.cwd), Path(hydra_cfg.runtime.output_dir)
    cwd = Path(os.getcwd())
    return cwd, cwd / "outputs" / "runs" / "adhoc"


def _experiment() -> Optional[str]:
    """The ``experiment=NAME`` this job was composed with, or the one of the run ``--from-run`` trains again
    (its config is that experiment's, composed), if any (tagged on the run, and the start of its name)."""
    from hydra.core.hydra_config import HydraConfig

    from lossexp.tracking.from_run import EXPERIMENT_ENV

    chosen = HydraConfig.get().runtime.choices.get("experiment") if HydraConfig.initialized() else None
    return chosen or os.environ.get(EXPERIMENT_ENV)


@dataclass
class Outcome:
    """What a run produced: the objective, Keras' history and the MLflow run id (None untracked)."""

    objective: Union[None, float, List[float]]
    history: Dict[str, Any]
    run_id: Optional[str]
    model: Any = None


def run(cfg: DictConfig) -> Union[float, List[float]]:
    """The Hydra task: validate, train, record; returns the objective (a list with several)."""
    project.load()
    config = validate(cfg)
    base_dir, output_dir = _hydra_dirs()
    from lossexp.sweeps.resume_sweep import earlier_attempt
    from lossexp.training.checkpoint_files import RESUME_ENV

    resolved = OmegaConf.to_container(cfg, resolve=True)
    earlier = earlier_attempt(config, resolved)  # a job of a resumed sweep: finished before, or to continue
    if earlier is not None and earlier.run_id is None:
        return earlier.objective
    if earlier is not None:  # its stopped child continues in the child's own directory
        return execute(config, resolved, base_dir, earlier.directory, resume_run=earlier.run_id).objective
    return execute(config, resolved, base_dir, output_dir,
                   resume_run=os.environ.get(RESUME_ENV)).objective  # lossexp train --resume: Hydra's dir is the run's


def execute(config: LossexpConfig, resolved: Dict[str, Any], base_dir: Path, output_dir: Path,
            network: Any = None, data: Any = None, components: Optional[Sequence[Any]] = None,
            regime: Optional[str] = None, callbacks: Sequence[Any] = (), resume_run: Optional[str] = None) -> Outcome:
    """Train one validated config and record it (see the module docstring).

    ``network`` (a Keras model, or a regime's players), ``data`` (a :class:`lossexp.data.Dataset`)
    and ``components`` replace the configured ones, trained by ``regime`` (default: the configured
    model's) — the Python API passes its own objects; ``callbacks`` run after lossexp's own.
    ``resume_run``: the id of the stopped run whose checkpoint is in ``output_dir``, continued in that
    run (:mod:`lossexp.tracking.resume` checked that it can continue).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    from lossexp.sweeps.job import child_identity, prepare_job
    from lossexp.tracking import clock

    clock.run_started()  # a sweep's later job measures its start-up from here, not from the process's
    from lossexp.sweeps.objective import objective_points, recorded_objective

    # before TensorFlow works: its threads per parallel job, no stale MLflow run (the user's own that a
    # fit from Python is the child of stays)
    job_tags = prepare_job(keep_run=config.tracking.parent_run_id)

    import keras

    from lossexp.data import load
    from lossexp.data.streams import same_every_pass
    from lossexp.sweeps.pruning import trial_callbacks
    from lossexp.tracking import console, datasets, logged_model, params, run_context, ui_links
    from lossexp.tracking.callback import RunRecorder
    from lossexp.tracking.divergence import DivergenceWatch
    from lossexp.tracking.guard import NonFiniteGuard
    from lossexp.tracking.gradient_plots import plot_gradients
    from lossexp.tracking.plots import plot_run
    from lossexp.tracking.run import TrackedRun
    from lossexp.tracking.users_run import autologging_off
    from lossexp.training import checkpoint, checkpoint_files
    from lossexp.training.callback_memory import CallbackMemory
    from lossexp.training.devices import placement, split_cpu
    from lossexp.training.early_stopping import EarlyStopping, best_history, outcome, restoring
    from lossexp.training.network_checks import training_mode_failures
    from lossexp.training.released_gradients import release_all_reduce_gradients
    from lossexp.training.trainer import built_model, check_task, for_config, ignored_components, regime_callbacks

    split_cpu(config.trainer.logical_devices)  # before TensorFlow's runtime starts
    quiet.hide_per_run_retracing()
    if network is None:  # a reused process (sweeps) must not carry state between jobs; a network given
        # from Python was named in the session it was built in: cleared, the names Keras gives what
        # rewiring adds (an embedding's new mask operation) would restart and take its own
        keras.backend.clear_session()
        release_all_reduce_gradients()  # the last job's, kept alive by TensorFlow's gradient registry
    keras.utils.set_random_seed(config.trainer.seed)
    trainer = for_config(config, regime, meta={} if network is not None else None)
    given = data if data is not None else load(config.data)
    with user_code_errors("preparing the data"):  # a regime of the project's own
        data = trainer.prepare(given, network)
        if getattr(data, "unread_labels", False) and not hasattr(trainer, "checked_labels"):
            data = data.with_labels_read()  # a regime that does not check labels as it trains reads them first
    check_task(trainer, data, config.model.name)
    if data.held_out is not None and config.trainer.validation_split <= 0:  # was dropped without a word
        raise invalid_value("trainer.validation_split", "its default (or any value > 0) with data of its own "
                            f"validation set (data {data.name!r}: {data.held_out} examples; validation_data=, "
                            "{'train': …, 'validation': …}, data.validation_x, data.validation_path), which validates "
                            "in place of the split; 0 turns validation off (then give no validation set)",
                            config.trainer.validation_split)
    if data.batch_size and data.batch_size != config.trainer.batch_size:
        print(f"lossexp: data {data.name} came in batches of {data.batch_size}; it trains in batches of "
              f"trainer.batch_size = {config.trainer.batch_size}", file=sys.stderr)
    saved = output_dir / checkpoint_files.DIRECTORY
    progress = checkpoint_files.progress(saved) if resume_run else None
    if resume_run and not progress:  # checked before; gone since (another resume finished it)
        raise ConfigError(f"Invalid value for --resume: run {resume_run}'s checkpoint {saved} is gone")
    with placement(config.trainer, network), user_code_errors("building the model"):  # devices, strategy, dtype policy
        model = built_model(trainer, trainer.build(data, network=network, components=components))  # nothing logged yet
        restored = checkpoint.restore(model, saved) if progress else None  # in the strategy's scope
    with user_code_errors("making the training regime's callbacks"):  # before the run: a failure records nothing
        data = trainer.prepare_for(data, getattr(model, "network", None))  # as build() read it
        own = regime_callbacks(trainer, model, data)  # first among the callbacks: their metrics are recorded with the epoch
    ignored = ignored_components(trainer, model, list(config.loss))
    if ignored:
        print(ignored, file=sys.stderr)
    unsaveable = logged_model.warn_if_unsaveable(model) if config.tracking.log_model else None

    child_name, child_tags = child_identity(config.tracking.parent_run_id, config.tracking.sweep_keys)
    experiment = _experiment()
    method = config.weighting.name if config.weighting.name != "equal" else None  # runs of two methods told apart
    run_name = (config.tracking.run_name or child_name
                or "·".join(filter(None, (experiment, config.model.name, composition(config), method))))
    tags = {"loss": composition(config), "model": config.model.name, "data": config.data.name,
            "lossexp.version": lossexp.__version__, **project.run_tags(), **job_tags, **child_tags}
    if experiment:
        tags["experiment"] = experiment
    if os.environ.get("LOSSEXP_FROM_RUN"):  # lossexp train --from-run RUN_ID
        tags["lossexp.from_run"] = os.environ["LOSSEXP_FROM_RUN"]
    if config.trainer.checkpoint:
        tags[checkpoint_files.TAG] = str(saved.resolve())
    if progress:
        tags[checkpoint_files.RESUMED_TAG] = (f"from epoch {progress['epochs']} (step {progress['step']}) to "
                                              f"{config.trainer.epochs} epochs")
    started = time.monotonic()
    with TrackedRun(config, run_name, run_context.with_source_tags(tags, base_dir), base_dir,
                    resume_run_id=resume_run if progress else None) as tracked, \
            checkpoint_files.resumable(saved, lambda: tracked.run_id):
        config_path = output_dir / "config.yaml"
        if not progress:  # a resumed run has its config, params and data recorded
            config_path.write_text(OmegaConf.to_yaml(resolved))
            tracked.log_params(params.compared_params(store.flatten(resolved)))
            tracked.log_artifact(config_path)
            if tracked.run_id:
                with user_code_errors("reading the data to record it"), loader_batches(data, config.data.name), \
                        checked_labels(trainer, data, model, config.model.name):  # a stream's reader runs here first
                    datasets.log_datasets(tracked.client, tracked.run_id, resolved["data"], *trainer.splits(data))
        elif tracked.record_resumed_params(params.compared_params(store.flatten(resolved))):  # trainer.epochs changed:
            config_path.write_text(OmegaConf.to_yaml(resolved))  # --from-run replays what the run trained to
            tracked.log_artifact(config_path)

        every = config.trainer.log_every_n_steps
        recorder = RunRecorder(tracked.sink, every, drift=config.tracking.drift and config.tracking.enabled,
                               drift_every_n_steps=config.tracking.drift_every_n_steps, resumed_drift=restored.drift if restored else None)
        watch = DivergenceWatch(tracked.sink, every, stop=config.trainer.stop_on_divergence)
        guard = NonFiniteGuard(tracked.sink, every)  # after the recorder: the NaN step is recorded too
        # after the recorder, committed once the epoch's points are in the store: no step before a
        # checkpoint's is left unrecorded by a kill (a resumed run records from the checkpoint's step on)
        # early stopping before the checkpoint, which keeps its memory of the epoch (a resumed run's best
        # epoch may be one before it stopped); the user's callbacks before it too: what their epoch end
        # changes (ReduceLROnPlateau's rate) is the state the next epoch starts from
        if config.trainer.unread_monitor:
            print(config.trainer.unread_monitor, file=sys.stderr)
        stopping = ([EarlyStopping(config.trainer.monitor, config.trainer.patience,
                                   resumed=restored.early_stopping if restored else None)]
                    if config.trainer.patience else [])
        saving = ([checkpoint.Checkpoint(saved, recorder.drift_state, tracked.sink.once_written,
                                         early_stopping=stopping[0].memory if stopping else None,
                                         callbacks=callbacks)]
                  if config.trainer.checkpoint else [])
        remembered = [CallbackMemory(callbacks, restored.callbacks)] if restored and callbacks else []
        trial = trial_callbacks(config.objective, tracked)  # an Optuna trial: reports each epoch, may be pruned
        shown = console.callbacks(config.trainer.verbose, config.trainer.epochs, list(config.loss))  # logs complete
        with run_context.system_metrics(config.tracking.system_metrics, tracked.run_id, tracked.uri), \
                autologging_off(), user_code_errors("in training"), same_every_pass(config.data.name), \
                training_mode_failures(model, data, config.model.name, config.trainer.batch_size), \
                checked_labels(trainer, data, model, config.model.name), loader_batches(data, config.data.name), \
                quiet.epoch_length_learned():
            history = model.fit(**trainer.fit_arguments(data), epochs=config.trainer.epochs,
                                initial_epoch=progress["epochs"] if progress else 0,
                                callbacks=[*own, recorder, *stopping, watch, guard, *trial, *callbacks, *remembered,
                                           *saving, *shown],
                                verbose=console.fit_verbosity(config.trainer.verbose))
        if config.tracking.plots:
            tracked.log_artifact(plot_run(tracked.sink.history, output_dir / "plots" / "run.png", run_name), "plots")
            gradients = plot_gradients(tracked.sink.history, output_dir / "plots" / "gradients.png", run_name)
            if gradients is not None:
                tracked.log_artifact(gradients, "plots")
            with user_code_errors("writing the training regime's artifacts"):
                for path in trainer.artifacts(own, output_dir, run_name):
                    tracked.log_artifact(path, "plots")
        if config.tracking.log_model:
            saved_file = output_dir / "model.keras"
            with logged_model.unsaved_model_is_a_warning(tracked, saved_file, warned=unsaveable):
                logged_model.save_trained(model, saved_file)
                if tracked.run_id:  # the same file, not the model saved again
                    logged_model.log_model(tracked.client, tracked.uri, tracked.run_id, tracked.experiment_id,
                                           saved_file, trainer.serving_network(model),
                                           data.sample(logged_model.EXAMPLE_ROWS)[0], config_path, recorder.step,
                                           {key: tags[key] for key in ("loss", "model", "data")})
        epochs = history.history
        restored_best = restoring([*stopping, *callbacks])  # trainer.patience's, or a Keras EarlyStopping of the user's
        if restored_best is not None:  # the model is its best epoch's: so is the objective
            tracked.sink.set_tags({"lossexp.early_stopping": outcome(restored_best)})
            epochs = best_history(restored_best, epochs, progress["epochs"] if progress else 0)
        value = recorded_objective(epochs, config.objective, trainer.fallback_objective)
        if tracked.run_id and value is not None:
            store.log_metrics(tracked.client, tracked.run_id, objective_points(value, config.objective, recorder.step))
        for kept in saving:  # recorded whole: nothing to continue
            kept.discard()
    url = None
    if tracked.run_id:
        url = ui_links.run_url(ui_links.ui_base(tracked.uri), tracked.experiment_id, tracked.run_id)
    weights = {name: (options or {}).get("weight") for name, options in config.loss.items()}
    served_by = "  (lossexp ui)" if tracked.uri and not tracked.uri.startswith("http") else ""
    print(console.summary(tracked.sink.history, weights, run_name, tracked.run_id, url, time.monotonic() - started,
                          served_by))
    return Outcome(value, history.history, tracked.run_id, model)


def checked_labels(trainer: Any, data: Any, model: Any, model_name: str) -> Any:
    """The regime's check of a stream as it trains (the supervised regime's: its values finite,
    :mod:`lossexp.data.finite_check`, and its labels not read before training, :mod:`lossexp.data.label_check`),
    or none."""
    check = getattr(trainer, "checked_labels", None)
    return check(data, model, model_name) if check is not None else contextlib.nullcontext()


def loader_batches(data: Any, name: str) -> Any:
    """A ``PyDataset``'s batches of other sizes than its first and last say, met as it is first read past its
    first examples (it is not read before training): the one line :func:`counted_batches` gives."""
    from lossexp.data.batches import counted_batches

    loader = data.extras.get("loader")
    return counted_batches(name, loader) if loader is not None else contextlib.nullcontext()
