"""The runs table: a child's tree glyph stays on its line with the start of its name; its title is text."""
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


def test_a_title_of_list_values_is_printed_as_recorded_not_read_as_markup():
    """A sweep over a list option is titled ``layers=[encoder/hidden_1],[encoder/embed]``: rich took the
    brackets for styles and printed ``layers=,``; a closing one (``[/x]``) raised MarkupError."""
    from lossexp.reports.summary_table import groups_table

    title = "sweep · loss.actpow.layers=[encoder/hidden_1],[encoder/embed] [/x]"
    console = Console(width=200, record=True)
    console.print(runs_table([_row("p" * 32, "sweep")], [], title))
    console.print(groups_table([], "val_loss", None, title, []))
    assert "".join(console.export_text().split()).count("".join(title.split())) == 2  # (wrapped to the table's width)
