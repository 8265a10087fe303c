"""Measures 1 and 2: epoch time of lossexp against plain Keras, and of tracking on against off.

* ``plain``        ``keras.Model.fit`` of the same CNN, data, batch size and optimizer, as a
                   researcher writes it (one step per call into the compiled function);
* ``plain_batched`` the same with lossexp's ``steps_per_execution`` (one logging interval), to
                   show what the ratio is against plain Keras given the same batching;
* ``lossexp_off``  ``lossexp train loss=hist_avg+activity+coef model=cnn``'s model and callbacks
                   (drift statistics, divergence watch) with tracking off;
* ``lossexp``      the same with tracking on, into a real MLflow SQLite store.

Epoch time is the median of epochs 2..E (epoch 1 includes tracing), variants interleaved.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any, Dict, List

from benchmarks.common import epoch_timer, lossexp_config, ratio_spread, spread

COMPONENTS = "loss=[hist_avg,activity,coef]"


def fit_epoch_seconds(variant: str, cfg: Any, data: Any, epochs: int, store_uri: str) -> float:
    import keras

    from lossexp.models import build_network
    from lossexp.tracking import store
    from lossexp.tracking.callback import MetricSink, RunRecorder
    from lossexp.tracking.divergence import DivergenceWatch
    from lossexp.training.assemble import build_model, make_optimizer

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    (x, y), validation = data.split(cfg.trainer.validation_split)
    timer = epoch_timer()
    callbacks: List[Any] = [timer]
    client = run_id = None
    if variant.startswith("plain"):
        model = build_network(cfg.model, data)
        model.compile(optimizer=make_optimizer(cfg.optimizer), loss=data.task_loss, metrics=[data.task_metric],
                      steps_per_execution=cfg.trainer.execution_steps if variant == "plain_batched" else 1)
    else:
        model = build_model(cfg, data)
        if variant == "lossexp":
            client = store.open_client(store_uri)
            run_id = store.start_run(client, store.ensure_experiment(client, "bench", store_uri), "bench", {})
        sink = MetricSink(client, run_id)
        every = cfg.trainer.log_every_n_steps
        callbacks += [RunRecorder(sink, every, drift=True), DivergenceWatch(sink, every)]
    model.fit(x, y, validation_data=validation, epochs=epochs, batch_size=cfg.trainer.batch_size,
              callbacks=callbacks, verbose=0)
    if client is not None:
        store.end_run(client, run_id, "FINISHED")
    return statistics.median(timer.times[1:])


def measure(quick: bool = False) -> Dict[str, Any]:
    from lossexp.data import load
    from lossexp.tracking import store

    cfg = lossexp_config("model=cnn", COMPONENTS)
    data = load(cfg.data)
    repeats, epochs = (3, 4) if quick else (9, 6)
    variants = ("plain", "plain_batched", "lossexp_off", "lossexp")
    times: Dict[str, List[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        uri = store.default_uri(Path(tmp))
        for _ in range(repeats):
            for variant in variants:
                times[variant].append(fit_epoch_seconds(variant, cfg, data, epochs, uri))
    return {
        "setup": {"command": f"lossexp train model=cnn {COMPONENTS}", "data": "digits", "epochs": epochs,
                  "repeats": repeats, "batch_size": cfg.trainer.batch_size, "drift": True,
                  "log_every_n_steps": cfg.trainer.log_every_n_steps,
                  "steps_per_execution": cfg.trainer.execution_steps},
        "epoch_seconds": {v: spread(t) for v, t in times.items()},
        "overhead_ratio": ratio_spread(times["lossexp"], times["plain"]),
        "overhead_ratio_same_batching": ratio_spread(times["lossexp"], times["plain_batched"]),
        "tracking_ratio": ratio_spread(times["lossexp"], times["lossexp_off"]),
        "goals": {"overhead_ratio": 1.10, "tracking_ratio": 1.05},
    }
