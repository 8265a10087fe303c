"""Measure 4: start-up. Wall time of ``lossexp --help`` and ``lossexp components`` (no TensorFlow
on that path), and the time from ``lossexp train`` to the end of its first training step, read
from the run's ``startup_seconds`` metric."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Dict

from benchmarks.common import lossexp_cli, spread, wall_time

# steps_per_execution=1: the first callback comes after exactly one training step
TRAIN = ["train", "model=mlp", "data=regression", "loss=hist_avg", "trainer.epochs=1", "trainer.steps_per_execution=1",
         "tracking.plots=false", "tracking.log_model=false"]


def measure(quick: bool = False) -> Dict[str, Any]:
    from mlflow.tracking import MlflowClient

    repeats = 3 if quick else 5
    results: Dict[str, Any] = {"goal_seconds": 1.0}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for name, args in (("help", ["--help"]), ("components", ["components"])):
            results[f"{name}_seconds"] = spread([wall_time(lossexp_cli() + args, cwd) for _ in range(repeats)])
        walls, first_steps = [], []
        for _ in range(max(2, repeats - 2)):
            walls.append(wall_time(lossexp_cli() + TRAIN, cwd))
            client = MlflowClient(f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}")
            [run] = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                       order_by=["attributes.start_time DESC"], max_results=1)
            first_steps.append(client.get_metric_history(run.info.run_id, "startup_seconds")[0].value)
        results["train_first_step_seconds"] = spread(first_steps)
        results["train_wall_seconds"] = spread(walls)
        results["train_command"] = "lossexp " + " ".join(TRAIN)
    return results
