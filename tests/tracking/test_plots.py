"""The run plot: one panel per kind of series that has data, one labelled line per series, drawn
from the history as given; and the PNG written to disk is that figure."""
import struct

import matplotlib.pyplot as plt
import pytest

from lossexp.tracking.plots import plot_run, run_figure

LOSSES, COEFFICIENTS = "Loss components (weighted)", "Trainable coefficients"
DRIFT = "Weight drift from init (relative L2)"
HISTORY = {
    "loss": [(1, 2.0), (2, 1.5)], "loss/hist_avg": [(1, 0.1), (2, 0.2)], "val_loss/activity": [(2, 0.3)],
    "coef/coef": [(0, 1.0), (2, 0.8)], "drift/hidden_1/from_init": [(1, 0.01), (2, 0.02)],
    "drift/hidden_1/per_step": [(1, 0.5), (2, 0.6)],  # not a from_init series: drawn nowhere
    "term/hist_avg": [(1, 10.0), (2, 20.0)], "epoch": [(2, 1.0)],  # unweighted terms and counters: not drawn
}


def panels(fig):
    """{panel title: {line label: (xs, ys, linestyle)}}, in the figure's order."""
    return {ax.get_title(): {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()), line.get_linestyle())
                             for line in ax.get_lines()} for ax in fig.axes}


@pytest.fixture
def figure():
    fig = run_figure(HISTORY, "mlp·hist_avg")
    yield fig
    plt.close(fig)


def test_a_panel_per_kind_of_series_with_a_line_per_series(figure):
    drawn = panels(figure)
    assert list(drawn) == [LOSSES, COEFFICIENTS, DRIFT]
    assert list(drawn[LOSSES]) == ["loss", "loss/hist_avg", "val_loss/activity"]
    assert list(drawn[COEFFICIENTS]) == ["coef/coef"] and list(drawn[DRIFT]) == ["drift/hidden_1/from_init"]
    for lines in drawn.values():
        for key, (xs, ys, style) in lines.items():
            assert list(zip(xs, ys)) == HISTORY[key]
            assert style == ("--" if key.startswith("val_") else "-")
    for ax in figure.axes:
        assert [text.get_text() for text in ax.get_legend().get_texts()] == list(drawn[ax.get_title()])
        assert ax.get_xlabel() == "training step" and ax.get_yscale() == "log"  # every value > 0
    assert figure._suptitle.get_text() == "mlp·hist_avg"


def test_panels_without_data_are_left_out_and_non_positive_values_keep_a_linear_scale():
    fig = run_figure({"loss": [(1, 0.5), (2, -0.25)], "coef/a": [(0, 1.0)]}, "r1")
    try:
        assert [(ax.get_title(), ax.get_yscale()) for ax in fig.axes] == [(LOSSES, "linear"), (COEFFICIENTS, "log")]
    finally:
        plt.close(fig)


def test_the_png_is_the_figure_one_panel_high_per_kind(tmp_path):
    open_before = set(plt.get_fignums())
    path = plot_run(HISTORY, tmp_path / "p" / "run.png", "mlp·hist_avg")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (800, 3 * 320)  # 8 in wide, 3.2 in per panel, at 100 dpi
    assert set(plt.get_fignums()) == open_before  # its figure was closed
