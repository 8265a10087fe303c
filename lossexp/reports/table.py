"""The rich table of runs shared by ``lossexp runs`` and ``lossexp compare``."""
from __future__ import annotations

from typing import Optional, Sequence

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


def runs_table(rows: Sequence[RunRow], keys: Sequence[str], title: str, mark: Optional[str] = None,
               nested: bool = False) -> Table:
    """One line per run; ``mark`` (a run id) is starred, e.g. a sweep's best child; ``nested``:
    children (runs with a parent) are shown with ``↳``."""
    table = Table(title=title, title_justify="left")
    for column in ("name", "status", "composition", *keys, "val_loss", "task metric", "objective", "duration"):
        right = column in ("val_loss", "objective", "duration")
        table.add_column(column, no_wrap=column in ("status", "duration", "task metric"),
                         min_width=12 if column == "name" else None, justify="right" if right else "left")
    for row in rows:
        metric = ""
        if row.task_metric:
            metric = f"{SHORT.get(row.task_metric[0], row.task_metric[0])}={row.task_metric[1]:.4g}"
        name = ("★ " if row.run_id == mark else "") + ("↳ " if nested and row.parent_id else "") + row.name
        status = f"[{STATUS_STYLE.get(row.status, 'white')}]{row.status}[/]"
        table.add_row(name, status, row.composition, *(row.params.get(k, "") for k in keys),
                      _number(row.val_loss), metric, _number(row.objective), _duration(row.duration_s))
    return table
