"""``lossexp compare PARENT`` / ``lossexp compare RUN RUN …``: a sweep's children, or several runs, side by
side — the table; with runs that differ only in ``--over`` keys (``trainer.seed``) the groups' table (mean ±
standard error, Welch's and the paired t-test against a baseline); a figure of the objective against each swept parameter
with the final per-component losses (error bars for groups), ``outputs/compare/<parent id>.png``, and of
the histories against the step, ``…-history.png``. A sweep's are logged to its parent run under
``compare/``; several runs' are only written. For a ``lossexp ablate`` sweep also the objective's change
per left-out component (``…-ablation.png``)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import List, Optional, Sequence

from lossexp.reports.command import OneLineParser, run


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lossexp compare", description="Compare a sweep's child runs, or several runs "
                           "(table and plots); runs that differ only in their seed are averaged.")
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="a sweep's parent run id (its children are compared), or two or more run ids (a parent "
                             "among them stands for its children); any unique prefix (lossexp runs shows them)")
    parser.add_argument("--over", type=lambda text: [k for k in text.split(",") if k], metavar="KEY[,KEY]",
                        help="average the runs over these keys (default: trainer.seed when it varies)")
    parser.add_argument("--baseline", action="append", metavar="KEY=VALUE",
                        help="the group the others are tested against (Welch's t-test of the objective); repeat "
                             "for several keys (default: the group whose swept weight is 0)")
    parser.add_argument("--uri", help="tracking URI (default: tracking.uri's default, outputs/mlflow.db)")
    parser.add_argument("--out", type=Path, help="where to write the PNG (default: outputs/compare/<PARENT>.png, for "
                        "several runs <id>+<id>….png); the histories beside it, …-history.png")
    return parser


def _compare(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    from lossexp.reports import query
    from lossexp.reports.selection import select

    client, uri = query.open_store(args.uri)
    chosen = select(client, args.runs)
    parent, children, keys = chosen.parent, chosen.runs, chosen.keys
    known = {k for r in children for k in r.data.params} | {"loss"}
    from lossexp.reports.groups import baseline, group_rows, over_keys, zero_groups

    over = over_keys(keys, args.over, sorted(known))
    rows = [query.to_row(r, list(dict.fromkeys([*keys, *over]))) for r in children]
    table_keys = [k for k in keys if k != "loss"]
    for row in rows:
        row.params.setdefault("loss", row.composition)
    group_keys = [k for k in keys if k not in over]
    groups = group_rows(rows, group_keys)
    base = baseline(groups, group_keys, args.baseline)
    zero = zero_groups(groups) if base is None and not args.baseline else []
    if len(zero) > 1:  # no Δ and p columns: say why, and how to get them
        print(f"lossexp: note: {len(zero)} groups have a swept weight of 0 ({'; '.join(g.label for g in zero)}): "
              "none is the baseline to test the others against; name one: --baseline KEY=VALUE")
    objective = _print_tables(chosen, rows, table_keys, groups, base, over)
    out = args.out or Path(os.getcwd()) / "outputs" / "compare" / f"{_name(parent, children)}.png"
    plotted = [_group_row(i, g) for i, g in enumerate(groups)] if len(groups) < len(rows) else rows
    errors = {r.run_id: (g.objective.se, {c: s.se for c, s in g.components.items()})
              for r, g in zip(plotted, groups)} if plotted is not rows else None
    from lossexp.reports.plot import plot_sweep

    png = plot_sweep(plotted, group_keys or ["loss"], out.resolve(), chosen.title, objective, errors)
    history = _plot_history(client, uri, groups, objective, chosen.title,
                            out.with_name(f"{out.stem}-history.png").resolve())
    if parent is None:
        print(f"lossexp: plots written to {png} and {history} (not logged: several runs have no one parent run)")
        return 0
    _log_to_parent(client, parent, children, objective, chosen.title, out, [("plot", png), ("history", history)])
    return 0


def _print_tables(chosen, rows, table_keys: List[str], groups, base, over: List[str]) -> str:
    """The runs' table, then the groups' when runs were averaged or a baseline is given; the objective's name."""
    from rich.console import Console

    from lossexp.reports.table import runs_table

    children, parent = chosen.runs, chosen.parent
    best = parent.data.tags.get("sweep.best_run_id") if parent is not None else None
    Console().print(runs_table(rows, table_keys, chosen.title, best))
    objective = children[0].data.params.get("objective.metric", "val_loss")
    measures = sorted({r.data.params.get("objective.metric", "val_loss") for r in children})
    if len(measures) > 1:
        print(f"lossexp: note: the runs' objective.metric differ ({', '.join(measures)}): their objectives "
              f"are not one measure; the history figure shows {objective}")
    if len(groups) < len(rows) or base is not None:
        from lossexp.reports.summary_table import groups_table

        averaged = (f"mean ± standard error over {', '.join(over)}" if over else "each run alone"
                    if len(groups) == len(rows) else "mean ± standard error of the runs of one config")
        Console().print(groups_table(groups, objective, base, f"{len(groups)} groups ({averaged})", over))
    return objective


def _log_to_parent(client, parent, children, objective: str, title: str, out: Path, figures) -> None:
    """Log a sweep's figures to its parent run under ``compare/``, with an ablation's and a Pareto front's."""
    ablated = _plot_ablation(parent, objective, out.with_name(f"{out.stem}-ablation.png").resolve(), title)
    front = _plot_front(parent, children, out.with_name(f"{out.stem}-pareto.png").resolve(), title)
    figures = [*figures, *([("ablation", ablated)] if ablated is not None else []),
               *([("Pareto front", front)] if front is not None else [])]
    for what, path in figures:
        client.log_artifact(parent.info.run_id, str(path), "compare")
        print(f"lossexp: {what} written to {path} and logged to run {parent.info.run_id} as compare/{path.name}")


def _name(parent, runs) -> str:
    """The figures' file name: the parent's id, or the runs' short ids joined (the first 4 and a count)."""
    if parent is not None:
        return parent.info.run_id
    ids = [r.info.run_id[:8] for r in runs]
    return "+".join(ids) if len(ids) <= 4 else "+".join(ids[:4]) + f"+{len(ids) - 4}more"


def _group_row(number: int, group):
    """A group as one row of the sweep figure: its params, mean objective and mean final components."""
    from dataclasses import replace

    first = group.rows[0]
    return replace(first, run_id=f"group-{number}", name=group.label, params={**first.params, **group.params},
                   objective=group.objective.mean if group.objective.n else None,
                   component_losses={c: s.mean for c, s in group.components.items() if s.n})


def _plot_history(client, uri: str, groups, objective: str, title: str, out: Path) -> Path:
    """The groups' histories (objective, each component's training and validation loss) against the step."""
    from lossexp.reports.history import read_histories
    from lossexp.reports.history_plot import history_keys, plot_history

    components = sorted({c for g in groups for c in g.components})
    keys = [k for _, panel in history_keys(objective, components) for k in panel]
    run_ids = [[r.run_id for r in g.rows] for g in groups]
    return plot_history(groups, read_histories(client, uri, run_ids, keys), objective, title, out)


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
