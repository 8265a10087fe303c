"""Start-up: ``lossexp --help`` and ``lossexp components`` (no TensorFlow on that path), and a one-epoch
tiny run — ``lossexp train model=mlp data=regression loss=hist_avg trainer.epochs=1`` — on an existing
store, against TensorFlow's own import time, interleaved. The goal: the tiny run ends within
TensorFlow's import time + 3 s. The import is timed strictly, as a process that starts, imports
TensorFlow and ends without the interpreter's teardown (``import tensorflow, os; os._exit(0)``),
since the ``lossexp`` command skips that teardown too (:mod:`lossexp.fast_exit`); ``python -c
"import tensorflow"``, teardown included (about 1 s more), is reported beside it."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, Dict

from benchmarks.common import lossexp_cli, ratio_spread, spread, wall_time

TINY = ["train", "model=mlp", "data=regression", "loss=hist_avg", "trainer.epochs=1"]
IMPORT_ONLY = "import os, tensorflow; os._exit(0)"
IMPORT_AND_EXIT = "import tensorflow"


def measure(quick: bool = False) -> Dict[str, Any]:
    from mlflow.tracking import MlflowClient

    repeats = 3 if quick else 5
    results: Dict[str, Any] = {"goal_seconds": 1.0, "goal_margin_over_import": 3.0, "tiny_command": "lossexp " +
                               " ".join(TINY)}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for name, args in (("help", ["--help"]), ("components", ["components"])):
            results[f"{name}_seconds"] = spread([wall_time(lossexp_cli() + args, cwd) for _ in range(repeats)])
        wall_time(lossexp_cli() + TINY, cwd)  # creates the store: the runs below find it existing
        imports, imports_and_exit, tiny, first_steps = [], [], [], []
        for _ in range(repeats):
            imports.append(wall_time([sys.executable, "-c", IMPORT_ONLY], cwd))
            imports_and_exit.append(wall_time([sys.executable, "-c", IMPORT_AND_EXIT], cwd))
            tiny.append(wall_time(lossexp_cli() + TINY, cwd))
            client = MlflowClient(f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}")
            [run] = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                       order_by=["attributes.start_time DESC"], max_results=1)
            first_steps.append(client.get_metric_history(run.info.run_id, "startup_seconds")[0].value)
        results["tensorflow_import_seconds"] = spread(imports)
        results["tensorflow_import_and_exit_seconds"] = spread(imports_and_exit)
        results["tiny_run_seconds"] = spread(tiny)
        results["tiny_run_over_import"] = spread([t - i for t, i in zip(tiny, imports)])
        results["tiny_run_ratio_to_import"] = ratio_spread(tiny, imports)
        results["first_step_seconds"] = spread(first_steps)
    return results
