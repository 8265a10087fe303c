"""``lossexp runs [--experiment E] [--sweep PARENT]``: a table of runs from the project's store."""
from __future__ import annotations

import argparse
from typing import List, Sequence

from lossexp.reports.command import OneLineParser, run


def build_parser() -> argparse.ArgumentParser:
    """The ``runs`` arguments (kept in one place so that more options can be added here)."""
    parser = OneLineParser(prog="lossexp runs", description="List MLflow runs: name, status, composition, "
                           "key params, final val_loss, task metric, objective, duration.")
    parser.add_argument("--experiment", "-e", metavar="E", help="only this MLflow experiment (default: all)")
    parser.add_argument("--sweep", metavar="PARENT", help="only the children of this sweep's parent run id")
    parser.add_argument("--uri", help="tracking URI (default: tracking.uri's default, outputs/mlflow.db)")
    parser.add_argument("--limit", type=int, default=100, help="at most this many runs, newest first (100)")
    return parser


def _list(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    from rich.console import Console

    from lossexp.reports import query
    from lossexp.reports.table import runs_table

    client, uri = query.open_store(args.uri)
    if args.sweep:
        parent = query.get_parent(client, args.sweep)
        keys = [k for k in query.sweep_keys(parent) if k != "loss"]
        runs = query.sweep_children(client, parent)
        title = f"{parent.info.run_name} [{parent.info.status}] — {len(runs)} runs"
        mark = parent.data.tags.get("sweep.best_run_id")
    else:
        ids = query.experiment_ids(client, args.experiment)
        runs = query.search(client, ids, limit=args.limit) if ids else []
        keys, title, mark = list(query.DEFAULT_KEYS), f"{len(runs)} runs in {uri}", None
    rows = [query.to_row(r, keys) for r in runs]
    Console(width=max(Console().width, 160)).print(runs_table(rows, keys, title, mark, nested=not args.sweep))
    return 0


def main(argv: Sequence[str]) -> int:
    return run(_list, argv)
