"""Metric histories of several runs for ``lossexp compare``, read at most ``max_points`` a series and
combined over seeds.

The runs of one group (a setting's seeds) are cut at the same step boundaries, bins of ``width`` steps
sized to that group's longest run (1 when it has at most ``max_points`` steps: every point kept), so a
1,000-step group beside a 100,000-step one keeps its detail; each bin holds the mean step and the mean
value of its points, non-finite values left out (a diverged run's NaN or inf: its line stops there). A
group's runs are then combined bin by bin (:func:`band`).

A local SQLite store is read in two queries, binning in SQLite (a sweep of 6 runs × 5 keys × 100,000
steps: 2.4 s of CPU, 234 MB); MLflow's reader makes an entity of every point, one query per run and
key (2.5 s of CPU for one 100,000-step series: 75 s for those 30; the store's sampled
``get_metric_history_bulk_interval`` 10.3 s), so it is used only for another store.
"""
from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

#: bins a series is cut into at most (a figure's panel is a few hundred pixels wide)
MAX_POINTS = 1000
#: MLflow's SQL store keeps ±inf as ±the largest float
_LARGEST = sys.float_info.max


@dataclass
class Series:
    """One run's metric, binned: the bin numbers, each bin's mean step and mean value (NaN: no finite value)."""
    bins: np.ndarray
    steps: np.ndarray
    values: np.ndarray


@dataclass
class Band:
    """Several runs' series combined per bin: mean step, mean value, standard error (NaN for one run) and
    the number of runs with a finite value."""
    steps: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    n: np.ndarray


def read_histories(client: Any, uri: Optional[str], groups: Sequence[Sequence[str]], keys: Sequence[str],
                   max_points: int = MAX_POINTS) -> Dict[Tuple[str, str], Series]:
    """``{(run id, key): Series}`` for the keys each run recorded; ``groups``: run ids whose series share
    bin boundaries, at most ``max_points`` bins over the group's longest run. ``uri``: a local SQLite
    store's (two queries), else None or another store's (MLflow, run by run)."""
    from lossexp.tracking import store

    groups = [list(group) for group in groups]
    if uri is not None and store.is_local_sqlite(uri) and store.sqlite_path(uri).exists():
        return _sqlite_binned(str(store.sqlite_path(uri).resolve()), groups, list(keys), max_points)
    raw = {}
    for run_id in (run_id for group in groups for run_id in group):
        for key in keys:
            points = store.retrying(lambda: client.get_metric_history(run_id, key))
            if points:
                raw[run_id, key] = (np.array([m.step for m in points], dtype=np.int64),
                                    np.array([m.value for m in points], dtype=np.float64))
    last = {run_id: max((int(steps.max()) for (r, _), (steps, _) in raw.items() if r == run_id and len(steps)),
                        default=0) for group in groups for run_id in group}
    width = _group_widths(groups, last, max_points)
    return {(run_id, key): _binned(steps, values, width[run_id]) for (run_id, key), (steps, values) in raw.items()}


def _group_widths(groups: List[List[str]], last_step: Dict[str, int], max_points: int) -> Dict[str, int]:
    """Each run's bin width: its group's, from the group's latest step."""
    return {run_id: bin_width(max((last_step.get(r, 0) for r in group), default=0), max_points)
            for group in groups for run_id in group}


def bin_width(last_step: int, max_points: int) -> int:
    """Steps per bin so that steps 0…``last_step`` make at most ``max_points`` bins."""
    return max(1, math.ceil((last_step + 1) / max_points))


def _binned(steps: np.ndarray, values: np.ndarray, width: int) -> Series:
    """Mean step and mean finite value of each bin of ``width`` steps (as :func:`_sqlite_binned` does in SQL)."""
    finite = np.isfinite(values) & (np.abs(values) < _LARGEST)
    bins, index = np.unique(steps // width, return_inverse=True)
    count = np.bincount(index, minlength=len(bins))
    kept = np.bincount(index, weights=finite, minlength=len(bins))
    total = np.bincount(index, weights=np.where(finite, values, 0.0), minlength=len(bins))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(kept > 0, total / kept, np.nan)
    return Series(bins, np.bincount(index, weights=steps, minlength=len(bins)) / count, mean)


def _sqlite_binned(path: str, groups: List[List[str]], keys: List[str],
                   max_points: int) -> Dict[Tuple[str, str], Series]:
    """:func:`read_histories` of a local SQLite store: MLflow's ``metrics`` table read only (``is_nan`` rows
    and ±inf, kept as ±the largest float, left out of the means), two queries (each run's last step, then
    the bins, each run's width given in a ``CASE``)."""
    import sqlite3

    from lossexp.tracking import store

    run_ids = [run_id for group in groups for run_id in group]
    pairs = [value for run_id in run_ids for key in keys for value in (run_id, key)]
    where = (f"run_uuid IN ({','.join('?' * len(run_ids))}) AND key IN ({','.join('?' * len(keys))})")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)) as connection:
        last = dict(store.retrying(lambda: connection.execute(  # a lookup of the index's end per run and key
            f"WITH pairs(run, name) AS (VALUES {','.join(['(?, ?)'] * (len(pairs) // 2))}) "
            f"SELECT run, MAX((SELECT MAX(step) FROM metrics WHERE run_uuid = run AND key = name)) "
            f"FROM pairs GROUP BY run", pairs).fetchall()))
        width = _group_widths(groups, {run: step for run, step in last.items() if step is not None}, max_points)
        rows = store.retrying(lambda: connection.execute(
            f"SELECT run_uuid, key, step / CASE run_uuid {' '.join(['WHEN ? THEN ?'] * len(width))} END AS bin, "
            f"AVG(step), AVG(CASE WHEN is_nan OR ABS(value) >= ? THEN NULL ELSE value END) "
            f"FROM metrics WHERE {where} GROUP BY run_uuid, key, bin ORDER BY run_uuid, key, bin",
            [v for pair in width.items() for v in pair] + [_LARGEST] + run_ids + keys).fetchall())
    grouped: Dict[Tuple[str, str], List[Tuple[int, float, float]]] = {}
    for run_id, key, number, step, value in rows:
        grouped.setdefault((run_id, key), []).append((number, step, math.nan if value is None else value))
    return {pair: Series(np.array([b for b, _, _ in points], dtype=np.int64), np.array([s for _, s, _ in points]),
                         np.array([v for _, _, v in points])) for pair, points in grouped.items()}


def band(series: Sequence[Series]) -> Band:
    """The runs' series combined bin by bin (the bins every series shares the boundaries of): the mean over
    the runs with a finite value in the bin, its standard error (sample std / √n; NaN for one run)."""
    bins = np.concatenate([s.bins for s in series])
    steps = np.concatenate([s.steps for s in series])
    values = np.concatenate([s.values for s in series])
    finite = np.isfinite(values)
    union, index = np.unique(bins, return_inverse=True)
    size = len(union)
    n = np.bincount(index, weights=finite, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(index, weights=np.where(finite, values, 0.0), minlength=size) / n
        squares = np.bincount(index, weights=np.where(finite, (values - mean[index]) ** 2, 0.0), minlength=size)
        se = np.where(n > 1, np.sqrt(squares / (n - 1) / n), np.nan)
        step = np.bincount(index, weights=steps, minlength=size) / np.bincount(index, minlength=size)
    return Band(step, np.where(n > 0, mean, np.nan), se, n.astype(np.int64))
