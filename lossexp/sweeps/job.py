"""What a sweep job does before it trains: fit its share of the cores, start clean, know its parent.

Parallel launchers (joblib) run ``n_jobs`` jobs at once on one machine and reuse worker
processes between jobs. TensorFlow's thread pools are per process and fixed once TensorFlow
starts work, so they are set once per process to ``cores // n_jobs`` (at least 1) before the first
job trains; a later job in the same worker keeps them. A stale fluent-API MLflow run (from
anything the process ran before) is ended so it cannot swallow this job's records.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional

from lossexp.sweeps.naming import child_name

PARENT_TAG = "mlflow.parentRunId"
#: the tag of an Optuna sweep's child: the number of its trial
TRIAL_TAG = "optuna.trial"
#: a child's own overrides (a JSON list), and their fingerprint, whatever their order and spelling: a
#: resumed sweep finds a job's earlier attempt by it (lossexp.sweeps.resume_sweep)
JOB_OVERRIDES_TAG = "sweep.job_overrides"
JOB_KEY_TAG = "sweep.job_key"
_threads_set: Optional[int] = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_job(n_jobs: Optional[int], cores: Optional[int] = None) -> Optional[int]:
    """``cores // n_jobs`` for ``n_jobs`` parallel jobs (``-1``: one per core); None: leave TF alone."""
    if n_jobs is None or n_jobs == 1:
        return None
    cores = cores or available_cores()
    if n_jobs < 0:  # joblib: -1 = all cores, -2 = all but one, …
        n_jobs = max(cores + 1 + n_jobs, 1)
    return max(cores // n_jobs, 1)


def _launcher_n_jobs() -> Optional[int]:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().launcher
    n_jobs = launcher.get("n_jobs") if "joblib" in str(launcher.get("_target_", "")) else None
    return int(n_jobs) if n_jobs is not None else None


def set_tensorflow_threads(threads: int) -> int:
    """Set TF's intra/inter-op pools once per process; returns the value in force."""
    global _threads_set
    if _threads_set is None:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
            _threads_set = threads
        except RuntimeError:  # TF already started work in this process: its pools stay as they are
            _threads_set = tf.config.threading.get_intra_op_parallelism_threads()
    return _threads_set


def prepare_job(keep_run: Optional[str] = None) -> Dict[str, str]:
    """Call before TensorFlow does any work in a job; returns tags describing what was set. Stale fluent
    runs are ended, except ``keep_run``: the user's own, which a ``lossexp.fit`` inside it records under
    (:mod:`lossexp.tracking.users_run`)."""
    import mlflow

    while mlflow.active_run() is not None and mlflow.active_run().info.run_id != keep_run:
        mlflow.end_run()
    threads = threads_per_job(_launcher_n_jobs())
    if threads is None:
        return {}
    return {"sweep.tf_threads": str(set_tensorflow_threads(threads))}


def child_identity(parent_run_id: Optional[str], sweep_keys: list) -> tuple[Optional[str], Dict[str, str]]:
    """(run name, tags) of this job's run when it is part of a sweep; (None, {}) otherwise."""
    if not parent_run_id:
        return None, {}
    from hydra.core.hydra_config import HydraConfig

    tags = {PARENT_TAG: parent_run_id}
    if not HydraConfig.initialized():
        return None, tags
    hydra_cfg = HydraConfig.get()
    overrides = [o for o in hydra_cfg.overrides.task if not o.startswith(INJECTED_PREFIXES)]
    num = hydra_cfg.job.get("num")
    numbered = "BasicSweeper" not in str(hydra_cfg.sweeper.get("_target_", ""))
    tags["sweep.job"] = str(num)
    from lossexp.sweeps.grid import job_digest

    tags[JOB_OVERRIDES_TAG] = json.dumps(overrides)
    tags[JOB_KEY_TAG] = job_digest(overrides)  # a resumed sweep finds the job's earlier attempt by it
    if hydra_cfg.sweeper.get("trial") is not None:  # a trial of lossexp's Optuna sweeper
        tags.update({TRIAL_TAG: str(hydra_cfg.sweeper.trial), "optuna.study": str(hydra_cfg.sweeper.study_name)})
    if not sweep_keys:  # a one-job multirun: the run keeps its usual name
        return None, tags
    return child_name(overrides, sweep_keys, num, numbered), tags


#: overrides the sweep callback adds to every job (not the user's choice, so not in run names)
INJECTED_PREFIXES = ("tracking.parent_run_id=", "tracking.uri=", "tracking.sweep_keys=")
