"""Measure 6: a sweep of 4 small jobs with Hydra's basic launcher against ``hydra/launcher=joblib``
(2 workers), wall time of the whole ``lossexp train -m`` command."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Dict

from benchmarks.common import lossexp_cli, ratio_spread, spread, wall_time

SWEEP = ["train", "-m", "model=mlp", "data=regression", "loss=hist_avg", "trainer.epochs=3",
         "loss.hist_avg.weight=0.001,0.01,0.1,1.0", "tracking.plots=false", "tracking.log_model=false"]
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}


def measure(quick: bool = False) -> Dict[str, Any]:
    repeats = 1 if quick else 2
    times: Dict[str, list] = {name: [] for name in LAUNCHERS}
    for _ in range(repeats):
        for name, extra in LAUNCHERS.items():
            with tempfile.TemporaryDirectory() as tmp:
                times[name].append(wall_time(lossexp_cli() + SWEEP + extra, Path(tmp)))
    return {
        "command": "lossexp " + " ".join(SWEEP),
        "wall_seconds": {name: spread(values) for name, values in times.items()},
        "joblib_speedup": ratio_spread(times["basic"], times["joblib"]),
    }
