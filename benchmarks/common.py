"""Shared pieces of the benchmarks: configs composed by Hydra, epoch timing, statistics, machine facts."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent


def lossexp_config(*overrides: str) -> Any:
    """The validated config ``lossexp train OVERRIDES`` would run (real Hydra composition)."""
    from hydra import compose, initialize_config_dir

    from lossexp import CONF_DIR
    from lossexp.config import validate

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return validate(compose("config", overrides=list(overrides)))


def spread(values: Sequence[float]) -> Dict[str, Any]:
    """Median, min, max and the values themselves."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": list(values)}


def ratio_spread(numerators: Sequence[float], denominators: Sequence[float]) -> Dict[str, Any]:
    """Ratios of paired measurements (same repeat), the ratio of the medians, and the ratio of the
    fastest measurements (``of_fastest``: on a shared machine, interference only ever adds time, so
    each side's fastest repeat is its least disturbed one)."""
    paired = [a / b for a, b in zip(numerators, denominators)]
    result = spread(paired)
    result["of_medians"] = statistics.median(numerators) / statistics.median(denominators)
    result["of_fastest"] = min(numerators) / min(denominators)
    return result


def epoch_timer() -> Any:
    """A Keras callback collecting the wall time of every epoch."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.times: List[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.times.append(time.perf_counter() - self._start)

    return EpochTimer()


def wall_time(argv: Sequence[str], cwd: Path, env: Dict[str, str] | None = None, timeout: float = 600) -> float:
    """Seconds a command takes to run to completion (it must succeed)."""
    start = time.perf_counter()
    result = subprocess.run(list(argv), cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                            text=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr[-2000:]}")
    return elapsed


def lossexp_cli() -> List[str]:
    return [sys.executable, "-m", "lossexp.cli"]


def machine() -> Dict[str, Any]:
    import keras
    import tensorflow as tf

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__}


def looped(model: Any, x: Any, y: Any, steps: int) -> Callable[[], None]:
    """``steps`` training steps of ``model`` on one batch, in one compiled loop (traced and run once)."""
    import tensorflow as tf

    @tf.function
    def run() -> None:
        for _ in tf.range(steps):
            model.train_step((x, y))

    run()
    return run
