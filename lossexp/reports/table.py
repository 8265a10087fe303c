"""The rich table of runs shared by ``lossexp runs`` and ``lossexp compare``.

Each run shows its short id (the first 8 characters; ``lossexp compare`` and ``--sweep`` accept
any unique prefix). With ``nested``, a sweep's children follow their parent, indented in job order.
Each run takes two lines, its name and then its composition, key params and results, in one
column that wraps instead of cutting, so that sibling runs whose names differ only at the end stay
distinguishable in an 80-column terminal, and no column is squeezed out of it.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from rich import box
from rich.markup import escape
from rich.table import Table

from lossexp.reports.query import RunRow

STATUS_STYLE = {"FINISHED": "green", "FAILED": "red", "KILLED": "yellow", "RUNNING": "cyan"}


def _number(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4g}"


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


SHORT = {"val_mean_absolute_error": "val_mae", "mean_absolute_error": "mae", "val_accuracy": "val_acc",
         "accuracy": "acc"}


def tree_order(rows: Sequence[RunRow]) -> Iterator[Tuple[RunRow, str]]:
    """(row, indent) with every child right after its parent (in job order), ``"├─"``/``"└─"``
    before a child (no space: a name wider than its column wrapped after the glyph, which stood alone on
    the child's line); a child whose parent is not among ``rows`` stays where it is, unindented."""
    present = {row.run_id for row in rows}
    children: Dict[str, List[RunRow]] = {}
    for row in rows:
        if row.parent_id in present:
            children.setdefault(row.parent_id, []).append(row)
    for row in rows:
        if row.parent_id in present:
            continue
        yield row, ""
        family = sorted(children.get(row.run_id, []),
                        key=lambda r: (r.job if r.job is not None else 1 << 30, r.start_time))
        for i, child in enumerate(family):
            yield child, "└─" if i == len(family) - 1 else "├─"


def _param_label(key: str, keys: Sequence[str]) -> str:
    """``optimizer.learning_rate`` → ``learning_rate`` unless two keys end alike; ``model.name`` → ``model``."""
    if key.endswith(".name"):
        return key[: -len(".name")]
    last = key.rsplit(".", 1)[-1]
    return last if sum(k.rsplit(".", 1)[-1] == last for k in keys) == 1 else key


def details(row: RunRow, keys: Sequence[str]) -> str:
    """The run's second line: composition, key params, final val_loss, task metric, objective."""
    parts = [row.composition or ""]
    parts.append(" ".join(f"{_param_label(k, keys)}={row.params[k]}" for k in keys if row.params.get(k, "") != ""))
    results = []
    if row.val_loss is not None:
        results.append(f"val_loss={_number(row.val_loss)}")
    if row.task_metric:
        results.append(f"{SHORT.get(row.task_metric[0], row.task_metric[0])}={row.task_metric[1]:.4g}")
    if row.objective is not None and row.objective != row.val_loss:
        results.append(f"objective={_number(row.objective)}")
    parts.append(" ".join(results))
    return " · ".join(part for part in parts if part)


def runs_table(rows: Sequence[RunRow], keys: Sequence[str], title: str, mark: Optional[str] = None,
               nested: bool = False) -> Table:
    """Two lines per run — its name, then (dim) composition, key params and results — beside its
    short id, status and duration; ``mark`` (a run id) is starred, e.g. a sweep's best child;
    ``nested``: children under their parent. ``title`` is text, not markup (a sweep's list values,
    ``layers=[encoder/hidden_1]``, are brackets rich took for a style and dropped)."""
    table = Table(title=escape(title), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", no_wrap=True, style="dim")
    table.add_column("run", overflow="fold", min_width=20)
    table.add_column("status", no_wrap=True)
    table.add_column("time", no_wrap=True, justify="right")
    ordered = tree_order(rows) if nested else ((row, "") for row in rows)
    for row, indent in ordered:
        name = indent + ("★ " if row.run_id == mark else "") + row.name
        more = details(row, keys)
        pad = " " * len(indent)
        text = escape(name) + (f"\n{pad}[dim]{escape(more)}[/]" if more else "")
        status = f"[{STATUS_STYLE.get(row.status, 'white')}]{row.status}[/]"
        table.add_row(row.short_id, text, status, _duration(row.duration_s))
    return table
