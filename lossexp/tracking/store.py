"""Where runs go and how a run starts and ends.

The default store is SQLite at an absolute path, ``<dir lossexp runs from>/outputs/mlflow.db``,
with artifacts beside it in ``outputs/mlartifacts``; ``tracking.uri`` or ``$MLFLOW_TRACKING_URI``
point elsewhere (e.g. a tracking server). Runs are driven through ``MlflowClient`` rather than
the fluent API, so no global "active run" exists for MLflow's ``atexit`` hook to mark FINISHED
after a crash: the run ends FINISHED, FAILED or KILLED exactly as training ended.

Several processes may write one SQLite store at once (a parallel sweep, jobs started side by
side). Two things go wrong then: a fresh store's schema migration races (``duplicate column
name``) and so does creating the experiment; and a write can meet ``database is locked``. The
first is serialised with a file lock beside the database (:func:`store_lock`), the second is
retried with backoff (:func:`retrying`).
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import random
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lossexp.errors import ConfigError
from lossexp.tracking import empty_store, store_file
from lossexp.tracking.reachability import sqlite_path

#: log_batch accepts at most this many params / metrics per call.
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_PARAM_LENGTH = 6000
#: the interpreter's thread switch interval while the background writer sends a batch (Python's
#: default is 5 ms; see :func:`handing_back_the_gil`)
WRITER_SWITCH_INTERVAL = 0.0005
#: Messages of errors that another writer causes and that pass when retried.
TRANSIENT = ("database is locked", "temporarily_unavailable", "duplicate column name")
RETRIES = 6
#: MLflow error codes of a server that refuses the credentials (401) or the user's permission (403)
ACCESS_DENIED = ("UNAUTHENTICATED", "PERMISSION_DENIED")

T = TypeVar("T")


def default_uri(base_dir: Path) -> str:
    return f"sqlite:///{(base_dir / 'outputs' / 'mlflow.db').resolve()}"


def resolve_uri(configured: Optional[str], base_dir: Path) -> str:
    """``tracking.uri`` > ``$MLFLOW_TRACKING_URI`` > SQLite under ``base_dir/outputs``.

    A relative SQLite path is made absolute against ``base_dir`` (the directory lossexp was
    started from), so a job that Hydra moved into its output directory writes the same store."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(base_dir)
    if is_local_sqlite(uri) and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{(base_dir / uri[len('sqlite:///'):]).resolve()}"
    return uri


def is_local_sqlite(uri: str) -> bool:
    return uri.startswith("sqlite:///")


def is_transient(error: BaseException) -> bool:
    """An error another process caused that a retry can get past (lock, migration race)."""
    text = f"{getattr(error, 'error_code', '')} {error}".lower()
    return any(marker in text for marker in TRANSIENT)


def is_access_denied(error: BaseException) -> bool:
    """The server refused the request's credentials or the user's permission (not worth retrying)."""
    return getattr(error, "error_code", None) in ACCESS_DENIED


def access_denied(error: BaseException, uri: str, experiment: str) -> ConfigError:
    """One line for a refusal the pre-check could not foresee (permissions changed since, an older server)."""
    status = getattr(error, "get_http_status_code", lambda: "")()
    return ConfigError(f"Invalid value for tracking.experiment: expected an experiment your MLflow credentials may "
                       f"create runs in on {uri}, got {experiment!r} (HTTP {status} {error.error_code}; set "
                       "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, or ask the experiment's owner for EDIT)")


def unusable(error: BaseException, uri: str, key: str) -> ConfigError:
    """One line for a URI MLflow has no store for (an unknown scheme, the retired file store, …)."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")[:300]
    return ConfigError(f"Invalid value for {key}: expected a tracking store MLflow can open, got {uri!r} ({first})")


def retrying(call: Callable[[], T], attempts: int = RETRIES, first_delay: float = 0.05) -> T:
    """``call()``, retried with jittered exponential backoff while it fails transiently."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as error:  # MlflowException, or SQLAlchemy's OperationalError surfacing bare
            if attempt == attempts - 1 or not is_transient(error):
                raise
            time.sleep(first_delay * 2 ** attempt * (1 + random.random()))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``<db>.lock`` (local SQLite only; a no-op otherwise)."""
    if not is_local_sqlite(uri):
        yield
        return
    lock_path = sqlite_path(uri).with_name(sqlite_path(uri).name + ".lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_experiment(client: MlflowClient, name: str, uri: str) -> str:
    """The experiment's id, creating it (with artifacts beside a local SQLite store) if needed.

    Under :func:`store_lock`, so concurrent first runs create one store and one experiment; on a
    tracking server (no lock) the process that loses the race to create it uses the winner's.
    """
    with store_lock(uri):
        experiment = retrying(lambda: client.get_experiment_by_name(name))
        if experiment is not None:
            return experiment.experiment_id
        artifact_location = None
        if is_local_sqlite(uri):
            artifact_location = (sqlite_path(uri).parent / "mlartifacts").resolve().as_uri()
        try:
            return retrying(lambda: client.create_experiment(name, artifact_location=artifact_location))
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # a tracking server has no lock file: another process created it since the lookup above
            return retrying(lambda: client.get_experiment_by_name(name)).experiment_id


def open_client(uri: str) -> MlflowClient:
    """A client whose store exists: a fresh SQLite store is created under the lock, a copy of an
    empty store that MLflow migrated once (:mod:`lossexp.tracking.empty_store`) or else migrated;
    an existing file must be an MLflow store (``lossexp.fit`` opens it without the CLI's pre-check)."""
    if not is_local_sqlite(uri):
        return MlflowClient(tracking_uri=uri)
    database = sqlite_path(uri)
    database.parent.mkdir(parents=True, exist_ok=True)
    with store_lock(uri):
        if not database.exists():
            empty_store.create_from_template(database)
        else:
            store_file.check(database, uri, "tracking.uri")
        client = MlflowClient(tracking_uri=uri)
        retrying(lambda: client.search_experiments(max_results=1))  # opening the store migrates it
    return client


def flatten(tree: Any, prefix: str = "") -> Dict[str, Any]:
    """``{"loss": {"hist_avg": {"weight": 0.01}}}`` → ``{"loss.hist_avg.weight": 0.01}``."""
    if isinstance(tree, dict):
        out: Dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        if not tree and prefix:
            out[prefix[:-1]] = "{}"
        return out
    return {prefix[:-1]: tree}


def _chunks(items: List[Any], size: int) -> Iterator[List[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def log_params(client: MlflowClient, run_id: str, params: Dict[str, Any]) -> None:
    entries = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in sorted(params.items())]
    for chunk in _chunks(entries, MAX_PARAMS_PER_BATCH):
        retrying(lambda: client.log_batch(run_id, params=chunk))


def metric_entries(points: Iterable[Tuple[str, float, int]]) -> List[Metric]:
    now = int(time.time() * 1000)
    return [Metric(key, float(value), now, int(step)) for key, value, step in points]


def log_metrics(client: MlflowClient, run_id: str, points: List[Tuple[str, float, int]],
                synchronous: bool = True) -> List[Future]:
    """Log ``(key, value, step)`` points in as few calls as MLflow allows, retried while they fail
    transiently; asynchronously, returns the batches' futures (see :func:`wait_all`)."""
    futures = []
    for chunk in _chunks(metric_entries(points), MAX_METRICS_PER_BATCH):
        send = functools.partial(retrying, functools.partial(client.log_batch, run_id, metrics=chunk))
        if synchronous:
            send()
        else:
            futures.append(_writer().submit(handing_back_the_gil(send)))
    return futures


def handing_back_the_gil(send: Callable[[], T]) -> Callable[[], T]:
    """``send`` run with the interpreter's thread switch interval at :data:`WRITER_SWITCH_INTERVAL`,
    restored after. MLflow's SQL store writes in Python (SQLAlchemy, about 0.1 ms of CPU a point),
    so while an epoch's batch is written in the background the training thread, returning from each
    compiled call, waited up to the default 5 ms for the GIL. At a 10k-parameter MLP (batch 32, 10
    steps a call; 12 interleaved epochs on a loaded 2-core machine) recording into SQLite made the
    fastest epoch 1.26× that without, 1.05× with the GIL handed back every 0.5 ms: the same CPU, no
    longer taken from the training thread's turn."""
    def run() -> T:
        previous = sys.getswitchinterval()
        sys.setswitchinterval(min(previous, WRITER_SWITCH_INTERVAL))
        try:
            return send()
        finally:
            sys.setswitchinterval(previous)

    return run


@functools.lru_cache(maxsize=None)
def _writer() -> ThreadPoolExecutor:
    """The process's one background writer of metric batches.

    lossexp's own thread rather than MLflow's ``log_batch(synchronous=False)``: MLflow's logging
    thread polls its queue with a one-second timeout, and ending a run joins that thread, so every
    run paid up to a second at its end waiting for the poll. An idle executor thread exits at once.
    """
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="lossexp-metrics")


def after_pending_writes(action: Callable[[], T]) -> "Future[T]":
    """``action`` run on the background writer once every batch sent before it is written (the
    writer is one thread working in order): a checkpoint's progress is committed after its epoch's
    points are in the store."""
    return _writer().submit(action)


def pending_writes_done(timeout: float) -> None:
    """Wait up to ``timeout`` seconds until everything sent to the background writer so far is done."""
    from concurrent.futures import TimeoutError as Late

    try:
        after_pending_writes(lambda: None).result(timeout=timeout)
    except Late:
        pass


def wait_all(futures: List[Future]) -> None:
    """Wait until every asynchronous batch is written; raises the first batch's lasting error."""
    for future in futures:
        future.result()


def set_tag(client: MlflowClient, run_id: str, key: str, value: Any) -> None:
    retrying(lambda: client.set_tag(run_id, key, str(value)))


def start_run(client: MlflowClient, experiment_id: str, run_name: str, tags: Dict[str, str]) -> str:
    run = retrying(lambda: client.create_run(experiment_id, run_name=run_name, tags=tags))
    return run.info.run_id


def end_run(client: MlflowClient, run_id: str, status: str) -> None:
    retrying(lambda: client.set_terminated(run_id, status=status))


def restart_run(client: MlflowClient, run_id: str, tags: Dict[str, str]) -> str:
    """Mark a stopped run RUNNING again (a resumed run continues it) with ``tags``, its ``error`` tag
    (the stopped attempt's) removed; its experiment id."""
    retrying(lambda: client.update_run(run_id, status="RUNNING"))
    if "error" in client.get_run(run_id).data.tags:
        retrying(lambda: client.delete_tag(run_id, "error"))
    for key, value in tags.items():
        set_tag(client, run_id, key, value)
    return client.get_run(run_id).info.experiment_id


def metric_histories(client: MlflowClient, run_id: str, uri: Optional[str] = None) -> Dict[str, List[Tuple[int, float]]]:
    """Every metric of the run as ``(step, value)`` points in step order (a resumed run's plots
    show what its stopped attempts recorded). A local SQLite store (``uri``) is read in one query
    (:func:`_sqlite_histories`); another store through MLflow, key by key."""
    if uri is not None and is_local_sqlite(uri) and sqlite_path(uri).exists():
        return _sqlite_histories(sqlite_path(uri), run_id)
    keys = list(client.get_run(run_id).data.metrics)
    return {key: sorted((m.step, m.value) for m in retrying(lambda: client.get_metric_history(run_id, key)))
            for key in keys}


def _sqlite_histories(database: Path, run_id: str) -> Dict[str, List[Tuple[int, float]]]:
    """:func:`metric_histories` of a local SQLite store in one read-only query of MLflow's ``metrics``
    table, its values as MLflow's reader gives them (``is_nan`` rows as NaN). MLflow's reader makes an
    entity of every row, one query per key: about 35 µs a point, 5.4–6.6 s for a 100-epoch run's
    163,000 points (1,250 steps an epoch, 48 metrics), which a resumed run paid before its first step;
    this query 0.3 s."""
    import math
    import sqlite3

    histories: Dict[str, List[Tuple[int, float]]] = {}
    with contextlib.closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as connection:
        rows = retrying(lambda: connection.execute(
            "SELECT key, step, value, is_nan FROM metrics WHERE run_uuid = ?", (run_id,)).fetchall())
    for key, step, value, is_nan in rows:
        histories.setdefault(key, []).append((int(step), math.nan if is_nan else float(value)))
    for points in histories.values():
        points.sort()
    return histories
