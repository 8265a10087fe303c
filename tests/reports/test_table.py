"""The runs table: a child's tree glyph stays on its line with the start of its name."""
from rich.console import Console

from lossexp.reports.query import RunRow
from lossexp.reports.table import runs_table


def _row(run_id: str, name: str, parent: str = None, job: int = None) -> RunRow:
    return RunRow(run_id, name, "FINISHED", "activity", {}, None, None, None, 5.0, parent, job=job)


def test_a_child_whose_name_is_wider_than_its_column_keeps_its_glyph_beside_its_name():
    long = "loss=hist_avg+activity,optimizer.learning_rate=0.001,loss.activity.weight=0.0001"
    rows = [_row("p" * 32, "sweep 2026-12-06/12-00-00"), _row("c" * 32, long, "p" * 32, 0)]
    console = Console(width=80, record=True)
    console.print(runs_table(rows, [], "runs", nested=True))
    [line] = [line for line in console.export_text().splitlines() if line.lstrip().startswith("c" * 8)]
    assert "└─loss=hist_avg" in line  # "└" stood alone on this line, the name from the next
