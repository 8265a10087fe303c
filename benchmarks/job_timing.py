"""A Hydra callback for the sweep benchmark: when each job starts and ends, in which process.

Registered on the command line (``+hydra.callbacks.job_timing._target_=benchmarks.job_timing.JobTiming``,
with ``LOSSEXP_JOB_TIMES=<file>``); it runs in the process that runs the job (the launching
process under the basic launcher, a worker under joblib) and appends one JSON line per event.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

from hydra.experimental.callback import Callback

from lossexp.tracking.clock import seconds_since_process_start


class JobTiming(Callback):
    def _write(self, event: str, config: Any) -> None:
        since_start = seconds_since_process_start() or 0.0
        now = time.time()
        record = {"event": event, "time": now, "pid": os.getpid(), "process_start": now - since_start,
                  "job": int(config.hydra.job.num)}
        with open(os.environ["LOSSEXP_JOB_TIMES"], "a") as out:
            out.write(json.dumps(record) + "\n")

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        self._write("start", config)

    def on_job_end(self, config: Any, job_return: Any = None, **kwargs: Any) -> None:
        self._write("end", config)
