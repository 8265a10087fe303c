"""``lossexp runs [--experiment E] [--sweep PARENT] [--reap] [--json]``: the runs of the project's store.

A table (short run ids, a sweep's children indented under their parent, cells wrapped rather than
cut) or, with ``--json``, one JSON array of runs with full ids for scripts.

``--reap`` first ends FAILED every RUNNING run whose heartbeat has stopped (its process was
killed; see :mod:`lossexp.tracking.reaper`), so the table tells the truth.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, List, Sequence

from lossexp.errors import ConfigError
from lossexp.reports.command import OneLineParser, run


#: the most runs one MLflow search returns
MAX_LIMIT = 50000


def _limit(text: str) -> int:
    """``--limit``'s value: a whole number MLflow's search accepts (0, -5, 60000 were its traceback)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a whole number from 1 to {MAX_LIMIT}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``runs`` arguments (kept in one place so that more options can be added here)."""
    parser = OneLineParser(prog="lossexp runs", description="List MLflow runs: name, status, composition, "
                           "key params, final val_loss, task metric, objective, duration.")
    parser.add_argument("--experiment", "-e", metavar="E", help="only this MLflow experiment (default: all)")
    parser.add_argument("--sweep", metavar="PARENT", help="only the children of this sweep's parent run id")
    parser.add_argument("--uri", help="tracking URI (default: tracking.uri's default, outputs/mlflow.db)")
    parser.add_argument("--limit", type=_limit, default=100, help=f"at most this many runs, newest first (100; "
                        f"1 to {MAX_LIMIT})")
    parser.add_argument("--reap", action="store_true",
                        help="first mark FAILED the RUNNING runs whose process died (no heartbeat for --stale-after s)")
    parser.add_argument("--stale-after", type=float, default=300.0, metavar="S",
                        help="seconds without a heartbeat after which --reap counts a run as dead (300)")
    parser.add_argument("--json", action="store_true", help="print the runs as a JSON array (full run ids)")
    return parser


def _list(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    from rich.console import Console

    from lossexp.reports import query
    from lossexp.reports.table import runs_table

    client, uri = query.open_store(args.uri)
    if args.reap:
        _reap(client, query.experiment_ids(client, args.experiment), args.stale_after)
    if args.sweep:
        parent = query.get_parent(client, args.sweep)
        keys = [k for k in query.sweep_keys(parent) if k != "loss"]
        runs = query.sweep_children(client, parent, args.sweep)
        title = f"{parent.info.run_name} [{parent.info.status}] — {len(runs)} runs"
        mark = parent.data.tags.get("sweep.best_run_id")
    else:
        ids = query.experiment_ids(client, args.experiment)
        runs = query.search(client, ids, limit=args.limit) if ids else []
        keys, title, mark = list(query.DEFAULT_KEYS), f"{len(runs)} runs in {uri}", None
    rows = [query.to_row(r, keys) for r in runs]
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=1, allow_nan=False))
        return 0
    Console().print(runs_table(rows, keys, title, mark, nested=not args.sweep))
    return 0


def _reap(client: Any, experiment_ids: List[str], stale_after_s: float) -> None:
    from lossexp.tracking.reaper import reap

    if stale_after_s <= 0:
        raise ConfigError("Invalid value for --stale-after: expected a positive number of seconds, "
                          f"got {stale_after_s:g}")
    reaped = reap(client, experiment_ids, stale_after_s)
    print(f"lossexp: marked {len(reaped)} dead run(s) FAILED" + (f": {', '.join(reaped)}" if reaped else ""))


def main(argv: Sequence[str]) -> int:
    return run(_list, argv)
