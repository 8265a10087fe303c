"""The Hydra task function: one training run from a composed config to an MLflow record.

``run(cfg)`` validates the config, builds data, network and loss components (failing with a
:class:`~lossexp.errors.ConfigError` before any MLflow run exists), trains the composed model
and records everything in one MLflow run. It returns the objective a sweeper minimises: the
value of ``objective.metric`` (default: the final validation loss, the training loss when there is
no validation split; for ``model=gan`` the number of ring modes the generator misses). In a sweep,
the run is a child of the sweep's parent run (see :mod:`lossexp.sweeps`).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import lossexp
from lossexp.config import LossexpConfig, validate
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


def _experiment() -> str | None:
    """The ``experiment=NAME`` this job was composed with, if any (tagged on the run)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get("experiment") if HydraConfig.initialized() else None


def run(cfg: DictConfig) -> float:
    config = validate(cfg)
    base_dir, output_dir = _hydra_dirs()
    output_dir.mkdir(parents=True, exist_ok=True)
    from lossexp.sweeps.job import child_identity, prepare_job
    from lossexp.sweeps.objective import objective_value

    job_tags = prepare_job()  # before TensorFlow works: its threads per parallel job, no stale MLflow run

    import keras

    from lossexp.data import load
    from lossexp.models import prepare_data
    from lossexp.tracking import console, datasets, logged_model, params, run_context, ui_links
    from lossexp.tracking.callback import RunRecorder
    from lossexp.tracking.divergence import DivergenceWatch
    from lossexp.tracking.guard import NonFiniteGuard
    from lossexp.tracking.plots import plot_run
    from lossexp.tracking.run import TrackedRun
    from lossexp.training.assemble import build_model

    keras.backend.clear_session()  # a reused process (sweeps) must not carry state between jobs
    keras.utils.set_random_seed(config.trainer.seed)
    data = prepare_data(config.model, load(config.data))  # model=vae: targets = inputs
    ring = None
    if config.model.name == "gan":  # two players, its own step, ring metrics each epoch; no validation split
        from lossexp.data.ring import modes
        from lossexp.tracking.ring import RingMetrics, plot_ring
        from lossexp.training.gan_assemble import build_gan

        model = build_gan(config, data)  # ConfigError here: nothing has been logged yet
        ring = RingMetrics(modes(config.data.radius), config.data.std, config.model.latent_dim, config.trainer.seed)
        fit_data = {"x": data.x}
        train, validation = (data.x, data.y), None
    else:
        model = build_model(config, data)  # ConfigError here: nothing has been logged yet
        train, validation = data.split(config.trainer.validation_split)
        fit_data = {"x": train[0], "y": train[1], "validation_data": validation}

    resolved = OmegaConf.to_container(cfg, resolve=True)
    child_name, child_tags = child_identity(config.tracking.parent_run_id, config.tracking.sweep_keys)
    experiment = _experiment()
    run_name = (config.tracking.run_name or child_name
                or "·".join(filter(None, (experiment, config.model.name, composition(config)))))
    tags = {"loss": composition(config), "model": config.model.name, "data": config.data.name,
            "lossexp.version": lossexp.__version__, **job_tags, **child_tags}
    if experiment:
        tags["experiment"] = experiment
    if os.environ.get("LOSSEXP_FROM_RUN"):  # lossexp train --from-run RUN_ID
        tags["lossexp.from_run"] = os.environ["LOSSEXP_FROM_RUN"]
    started = time.monotonic()
    with TrackedRun(config, run_name, run_context.with_source_tags(tags, base_dir), base_dir) as tracked:
        config_path = output_dir / "config.yaml"
        config_path.write_text(OmegaConf.to_yaml(resolved))
        tracked.log_params(params.compared_params(store.flatten(resolved)))
        tracked.log_artifact(config_path)
        if tracked.run_id:
            datasets.log_datasets(tracked.client, tracked.run_id, resolved["data"], train, validation)

        every = config.trainer.log_every_n_steps
        recorder = RunRecorder(tracked.sink, every, drift=config.tracking.drift)
        watch = DivergenceWatch(tracked.sink, every, stop=config.trainer.stop_on_divergence)
        guard = NonFiniteGuard(tracked.sink, every)  # after the recorder: the NaN step is recorded too
        with run_context.system_metrics(config.tracking.system_metrics, tracked.run_id, tracked.uri):
            history = model.fit(
                **fit_data,
                epochs=config.trainer.epochs,
                batch_size=config.trainer.batch_size,
                # ring first: recorded with the epoch; the console's line last, when the epoch's logs are complete
                callbacks=([ring] if ring is not None else []) + [recorder, watch, guard]
                + console.callbacks(config.trainer.verbose, config.trainer.epochs, list(config.loss)),
                verbose=console.fit_verbosity(config.trainer.verbose),
            )
        if config.tracking.plots:
            tracked.log_artifact(plot_run(tracked.sink.history, output_dir / "plots" / "run.png", run_name), "plots")
            if ring is not None:
                ring_png = plot_ring(ring.samples, ring.modes, ring.std, output_dir / "plots" / "ring.png", run_name)
                tracked.log_artifact(ring_png, "plots")
        if config.tracking.log_model:
            model.save(output_dir / "model.keras")
            if tracked.run_id:
                logged_model.log_model(tracked.client, tracked.uri, tracked.run_id, tracked.experiment_id, model,
                                       (validation or train)[0], config_path, recorder.step,
                                       {key: tags[key] for key in ("loss", "model", "data")})
        value = objective_value(history.history, config.objective.metric)
        if tracked.run_id:
            store.log_metrics(tracked.client, tracked.run_id, [("objective", value, recorder.step)])
    url = None
    if tracked.run_id:
        url = ui_links.run_url(ui_links.ui_base(tracked.uri), tracked.experiment_id, tracked.run_id)
    weights = {name: (options or {}).get("weight") for name, options in config.loss.items()}
    served_by = "  (lossexp ui)" if tracked.uri and not tracked.uri.startswith("http") else ""
    print(console.summary(tracked.sink.history, weights, run_name, tracked.run_id, url, time.monotonic() - started,
                          served_by))
    return value
