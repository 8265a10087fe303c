"""Start-up: ``lossexp --help`` and ``lossexp components`` (no TensorFlow on that path), and a one-epoch
tiny run — ``lossexp train model=mlp data=regression loss=hist_avg trainer.epochs=1`` — on an existing
store, against TensorFlow's own import time, interleaved. The goal: the tiny run ends within
TensorFlow's import time + 3 s. The import is timed strictly, as a process that starts, imports
TensorFlow and ends without the interpreter's teardown (``import tensorflow, os; os._exit(0)``),
since the ``lossexp`` command skips that teardown too (:mod:`lossexp.fast_exit`); ``python -c
"import tensorflow"``, teardown included (about 1 s more), is reported beside it.

Where the tiny run's time goes is measured the same way, interleaved: the imports of everything
its training path loads (:data:`ALL_IMPORTS`), then the run built up one part at a time
(:data:`BUILT_UP`: without tracking, then with an MLflow run and its metrics, then drift and
gradient diagnostics, then the logged model, then the plots = the tiny run as shipped); a part's
cost is the median over repeats of its command's time minus the one before it."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

from benchmarks.common import lossexp_cli, ratio_spread, spread, wall_time

TINY = ["train", "model=mlp", "data=regression", "loss=hist_avg", "trainer.epochs=1"]
IMPORT_ONLY = "import os, tensorflow; os._exit(0)"
IMPORT_AND_EXIT = "import tensorflow"
#: what the tiny run's training path imports before it trains (lossexp's own modules aside)
ALL_IMPORTS = ("import os, tensorflow, keras, hydra, mlflow, matplotlib.pyplot, "
               "mlflow.store.tracking.sqlalchemy_store; os._exit(0)")
_OFF = ["tracking.plots=false", "tracking.log_model=false", "tracking.drift=false", "tracking.gradients=false"]
#: (part added, the tiny run's extra overrides): each the one before plus that part
BUILT_UP = (("training without tracking", ["tracking.enabled=false"]),
            ("an MLflow run: params, metrics, config", _OFF),
            ("drift statistics and gradient diagnostics", _OFF[:2]),
            ("the logged model", _OFF[:1]),
            ("the plots", []))


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
        imports, imports_and_exit, all_imports, tiny, first_steps = [], [], [], [], []
        built_up: Dict[str, List[float]] = {part: [] for part, _ in BUILT_UP}
        for _ in range(repeats):
            imports.append(wall_time([sys.executable, "-c", IMPORT_ONLY], cwd))
            imports_and_exit.append(wall_time([sys.executable, "-c", IMPORT_AND_EXIT], cwd))
            all_imports.append(wall_time([sys.executable, "-c", ALL_IMPORTS], cwd))
            for part, overrides in BUILT_UP[:-1]:
                built_up[part].append(wall_time(lossexp_cli() + TINY + overrides, cwd))
            tiny.append(wall_time(lossexp_cli() + TINY, cwd))
            built_up[BUILT_UP[-1][0]].append(tiny[-1])
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
        results["all_imports_seconds"] = spread(all_imports)
        results["where_the_time_goes"] = where_the_time_goes(imports, all_imports, built_up)
    return results


def where_the_time_goes(imports: List[float], all_imports: List[float],
                        built_up: Dict[str, List[float]]) -> Dict[str, Any]:
    """Each part's seconds: the median over repeats of its command minus the one before it."""
    parts, before = {"TensorFlow's import": spread(imports)}, imports
    chain = {"the other imports (Keras, Hydra, MLflow and its SQL store, Matplotlib)": all_imports, **built_up}
    for part, times in chain.items():
        parts[part] = spread([a - b for a, b in zip(times, before)])
        before = times
    return parts
