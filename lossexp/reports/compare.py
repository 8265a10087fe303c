"""``lossexp compare PARENT``: a sweep's children side by side — the table, and a figure of the
objective against each swept parameter with the final per-component losses, written to
``outputs/compare/<parent id>.png`` and logged to the parent run under ``compare/``; for a
``lossexp ablate`` sweep also the objective's change per left-out component (``…-ablation.png``)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import List, Optional, Sequence

from lossexp.reports.command import OneLineParser, run


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lossexp compare", description="Compare a sweep's child runs (table and plot).")
    parser.add_argument("parent", metavar="PARENT", help="the sweep's parent run id (lossexp runs shows it)")
    parser.add_argument("--uri", help="tracking URI (default: tracking.uri's default, outputs/mlflow.db)")
    parser.add_argument("--out", type=Path, help="where to write the PNG (default: outputs/compare/<PARENT>.png)")
    return parser


def _compare(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    from rich.console import Console

    from lossexp.reports import query
    from lossexp.reports.plot import plot_sweep
    from lossexp.reports.table import runs_table

    client, _ = query.open_store(args.uri)
    parent = query.get_parent(client, args.parent)
    children = query.sweep_children(client, parent, args.parent)
    keys = query.sweep_keys(parent)
    rows = [query.to_row(r, keys) for r in children]
    table_keys = [k for k in keys if k != "loss"]
    for row in rows:
        row.params.setdefault("loss", row.composition)
    title = f"{parent.info.run_name} [{parent.info.status}]"
    Console().print(
        runs_table(rows, table_keys, title, parent.data.tags.get("sweep.best_run_id")))
    objective = children[0].data.params.get("objective.metric", "val_loss")
    out = args.out or Path(os.getcwd()) / "outputs" / "compare" / f"{parent.info.run_id}.png"
    png = plot_sweep(rows, keys or ["loss"], out.resolve(), title, objective)
    client.log_artifact(parent.info.run_id, str(png), "compare")
    print(f"lossexp: plot written to {png} and logged to run {parent.info.run_id} as compare/{png.name}")
    ablated = _plot_ablation(parent, objective, out.with_name(f"{out.stem}-ablation.png").resolve(), title)
    if ablated is not None:
        client.log_artifact(parent.info.run_id, str(ablated), "compare")
        print(f"lossexp: ablation written to {ablated} and logged to run {parent.info.run_id} "
              f"as compare/{ablated.name}")
    front = _plot_front(parent, children, out.with_name(f"{out.stem}-pareto.png").resolve(), title)
    if front is not None:
        client.log_artifact(parent.info.run_id, str(front), "compare")
        print(f"lossexp: Pareto front written to {front} and logged to run {parent.info.run_id} "
              f"as compare/{front.name}")
    return 0


def _plot_ablation(parent, objective: str, out: Path, title: str) -> Optional[Path]:
    """The objective's change per left-out component of a ``lossexp ablate`` sweep; None for another sweep."""
    from lossexp.reports.plot import plot_ablation
    from lossexp.sweeps.ablation import read_table

    rows = read_table(parent)
    if not rows:
        return None
    for name, mean, std in rows:
        print(f"without {name}: Δ {objective} = {mean:+.6g} ± {std:.3g}")
    return plot_ablation(rows, objective, out, title)


def _plot_front(parent, children, out: Path, title: str) -> Optional[Path]:
    """The Pareto front of a sweep with several objectives (tag ``sweep.objectives``); None otherwise."""
    from lossexp.reports.plot import plot_front
    from lossexp.sweeps.objective import objective_keys

    metrics = [m for m in parent.data.tags.get("sweep.objectives", "").split(",") if m]
    if len(metrics) < 2:
        return None
    directions = parent.data.tags.get("sweep.directions", "").split(",")
    keys = objective_keys(metrics)
    scored = [c for c in children if c.info.status == "FINISHED" and c.data.tags.get("optuna.state") != "PRUNED"
              and all(k in c.data.metrics for k in keys)]
    points = {c.info.run_id: [c.data.metrics[k] for k in keys] for c in scored}
    optimal = [r for r in parent.data.tags.get("sweep.pareto_run_ids", "").split(",") if r]
    names = {c.info.run_id: c.info.run_name for c in children}
    print(f"Pareto-optimal ({len(optimal)} of {len(points)}): " + ", ".join(names.get(r, r) for r in optimal))
    return plot_front(points, optimal, names, metrics, directions, out, title)


def main(argv: Sequence[str]) -> int:
    return run(_compare, argv)
