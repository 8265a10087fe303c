"""What lossexp costs over plain Keras, measured side by side in one process.

Variants, interleaved over repeats (this machine is noisy: compare ratios, report medians):

* ``plain``         keras.Model.fit of the same CNN, data, batch size and optimizer;
* ``lossexp_off``   the composed model with hist_avg + activity + coef and drift statistics,
                    tracking off (metrics buffered in memory only);
* ``lossexp``       the same with tracking on, into a real MLflow SQLite store.

Epoch time is the median of epochs 2..E (epoch 1 includes tracing). Writes
``benchmarks/results.json`` (``overhead_ratio``: lossexp / plain; ``tracking_ratio``:
lossexp / lossexp_off) and prints a table.

    python benchmarks/overhead.py [--repeats 5] [--epochs 6]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from lossexp import CONF_DIR  # noqa: E402
from lossexp.config import validate  # noqa: E402
from lossexp.data import load  # noqa: E402
from lossexp.models import build_network  # noqa: E402
from lossexp.tracking import store  # noqa: E402
from lossexp.tracking.callback import MetricSink, RunRecorder  # noqa: E402
from lossexp.training.assemble import build_model, make_optimizer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.json"
COMPONENTS = ("hist_avg", "activity", "coef")


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def config():
    raw = OmegaConf.merge(
        OmegaConf.load(CONF_DIR / "config.yaml"),
        {"model": OmegaConf.load(CONF_DIR / "model" / "cnn.yaml"),
         "data": OmegaConf.load(CONF_DIR / "data" / "digits.yaml"),
         "optimizer": OmegaConf.load(CONF_DIR / "optimizer" / "adam.yaml"),
         "trainer": OmegaConf.load(CONF_DIR / "trainer" / "default.yaml"),
         "loss": {k: v for name in COMPONENTS for k, v in OmegaConf.load(CONF_DIR / "loss" / f"{name}.yaml").items()}},
    )
    raw.pop("defaults", None)
    raw.pop("hydra", None)
    return validate(raw)


def fit_time(variant, cfg, data, epochs, store_uri):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    (x, y), validation = data.split(cfg.trainer.validation_split)
    timer = EpochTimer()
    callbacks = [timer]
    client = run_id = None
    if variant == "plain":
        model = build_network(cfg.model, data)
        model.compile(optimizer=make_optimizer(cfg.optimizer), loss=data.task_loss, metrics=[data.task_metric])
    else:
        model = build_model(cfg, data)
        if variant == "lossexp":
            client = store.open_client(store_uri)
            experiment = store.ensure_experiment(client, "bench", store_uri)
            run_id = store.start_run(client, experiment, "bench", {})
        callbacks.append(RunRecorder(MetricSink(client, run_id), cfg.trainer.log_every_n_steps, drift=True))
    model.fit(x, y, validation_data=validation, epochs=epochs, batch_size=cfg.trainer.batch_size,
              callbacks=callbacks, verbose=0)
    if client is not None:
        store.end_run(client, run_id, "FINISHED")
    return statistics.median(timer.times[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    cfg = config()
    data = load(cfg.data)
    variants = ("plain", "lossexp_off", "lossexp")
    times = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        uri = store.default_uri(Path(tmp))
        for _ in range(args.repeats):
            for variant in variants:
                times[variant].append(fit_time(variant, cfg, data, args.epochs, uri))
    median = {v: statistics.median(t) for v, t in times.items()}
    ratios = [ours / plain for ours, plain in zip(times["lossexp"], times["plain"])]
    tracking = [on / off for on, off in zip(times["lossexp"], times["lossexp_off"])]
    result = {
        "overhead_ratio": median["lossexp"] / median["plain"],
        "overhead_ratio_per_repeat": ratios,
        "tracking_ratio": median["lossexp"] / median["lossexp_off"],
        "tracking_ratio_per_repeat": tracking,
        "epoch_seconds_median": median,
        "epoch_seconds": times,
        "setup": {"model": "cnn", "data": "digits", "components": list(COMPONENTS), "drift": True,
                  "batch_size": cfg.trainer.batch_size, "epochs": args.epochs, "repeats": args.repeats,
                  "log_every_n_steps": cfg.trainer.log_every_n_steps},
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
                    "keras": keras.__version__},
    }
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing.update(result)
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    for variant in variants:
        print(f"{variant:<12} epoch {median[variant] * 1000:7.1f} ms")
    print(f"overhead ratio (lossexp / plain): {result['overhead_ratio']:.3f}  "
          f"(per repeat {min(ratios):.3f}..{max(ratios):.3f})")
    print(f"tracking ratio (on / off):        {result['tracking_ratio']:.3f}")


if __name__ == "__main__":
    main()
