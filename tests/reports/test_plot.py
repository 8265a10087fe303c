"""The sweep figure of ``lossexp compare`` is laid out without overlap at its own size: checked on the
rendered figure with Matplotlib's own extents (tight bounding boxes of every text and artist)."""
from __future__ import annotations

import itertools
import struct

import pytest
from matplotlib.transforms import Bbox

from lossexp.reports.plot import plot_sweep, run_label, sweep_figure
from lossexp.reports.query import RunRow


def _rows(n: int) -> list:
    """A sweep over a composition and a weight, with the long child names a real sweep has."""
    rows = []
    for i in range(n):
        loss = ("hist_avg+activity", "activity", "coef")[i % 3]
        weight = ("0.001", "0.01", "0.1")[i // 3 % 3]
        parts = {c: 0.01 * (i + 1) * (j + 1) for j, c in enumerate(loss.split("+"))}
        rows.append(RunRow(run_id=f"{i:032x}", name=f"loss={loss},loss.activity.weight={weight}", status="FINISHED",
                           composition=loss, params={"loss": loss, "loss.activity.weight": weight},
                           val_loss=1.0 + i, task_metric=("val_accuracy", 0.5), objective=1.0 + i / 10,
                           duration_s=3.0, parent_id="p" * 32, component_losses={"task": 1.0, **parts}))
    return rows


def _overlap(a, b) -> bool:
    """Two display-space boxes overlap by more than a pixel each way."""
    return a.x0 + 1 < b.x1 and b.x0 + 1 < a.x1 and a.y0 + 1 < b.y1 and b.y0 + 1 < a.y1


@pytest.mark.parametrize("n_runs", [3, 6])
def test_compare_figure_has_no_overlapping_labels_legend_or_bars(tmp_path, n_runs):
    fig = sweep_figure(_rows(n_runs), ["loss", "loss.activity.weight"], "sweep 2026-12-02/04-30-00 · "
                       "loss=hist_avg+activity,activity,coef loss.activity.weight=0.001,0.01", "val_loss")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    figure_box = fig.bbox

    # nothing is drawn outside the figure at its own size (the saved PNG cuts nothing off)
    tight = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    assert tight.x0 >= -0.5 and tight.y0 >= -0.5 and tight.x1 <= figure_box.x1 + 0.5 and tight.y1 <= figure_box.y1 + 0.5

    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        labels = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        for a, b in itertools.combinations(labels, 2):
            assert not _overlap(a, b), "x tick labels overlap"
        for label in labels + [ax.xaxis.label.get_window_extent(renderer)]:
            assert not _overlap(label, legend), "the legend covers tick labels"
        for bar in ax.patches:  # as drawn: clipped to the axes (a log-scale bar starts at -inf)
            drawn = Bbox.intersection(bar.get_window_extent(renderer), ax.bbox)
            assert drawn is None or not _overlap(drawn, legend), "the legend covers a bar"
    axes_boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]
    for a, b in itertools.combinations(axes_boxes, 2):
        assert not _overlap(a, b), "panels overlap"
    title = fig._suptitle.get_window_extent(renderer)
    for box in axes_boxes + [legend]:
        assert not _overlap(title, box), "the title overlaps a panel"

    # the PNG is the figure at its own size
    import matplotlib.pyplot as plt

    plt.close(fig)
    path = plot_sweep(_rows(n_runs), ["loss", "loss.activity.weight"], tmp_path / "sweep.png", "sweep", "val_loss")
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    expected = sweep_figure(_rows(n_runs), ["loss", "loss.activity.weight"], "sweep", "val_loss")
    assert abs(width - expected.get_figwidth() * 100) <= 1 and abs(height - expected.get_figheight() * 100) <= 1
    plt.close(expected)


def test_run_labels_put_one_override_per_line():
    assert run_label("loss=coef,loss.activity.weight=0.1") == "loss=coef\nloss.activity.weight=\n0.1"


def test_the_ablation_figures_title_is_wrapped_inside_the_figure():
    """A ``lossexp ablate`` parent's name (``sweep <date>/<time> · ablation.leave_out=null,hist_avg,… trainer.seed=0,1
    …``) was one line wider than the 5.6-inch figure: the PNG showed it cut at both ends."""
    import matplotlib.pyplot as plt

    from lossexp.reports.plot import ablation_figure

    title = ("sweep 2026-12-06/02-35-33-603763 · ablation.leave_out=null,hist_avg,activity,margin "
             "trainer.seed=0,1 experiment=spiral_base trainer.epochs=1 [FINISHED]")
    rows = [("hist_avg", -9.5e-05, 1.5e-05), ("activity", -1.16e-04, 2.1e-05), ("margin", 8.0e-05, 2.4e-05)]
    fig = ablation_figure(rows, "val_loss/task", title)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.axes[0].title.get_window_extent(renderer)
    assert box.x0 >= -0.5 and box.x1 <= fig.bbox.x1 + 0.5 and box.y1 <= fig.bbox.y1 + 0.5
    assert fig.axes[0].title.get_text().replace("\n", " ") == title
    plt.close(fig)


def test_grouped_rows_are_drawn_with_error_bars():
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer, ErrorbarContainer

    rows = _rows(9)
    errors = {r.run_id: (0.05, {c: 0.01 for c in r.component_losses}) for r in rows}
    fig = sweep_figure(rows, ["loss.activity.weight"], "sweep", "val_loss", errors)
    parameter, components = fig.axes
    assert any(isinstance(c, ErrorbarContainer) for c in parameter.containers)
    assert parameter.get_xscale() == "log"  # weights 0.001 … 0.1, as without error bars
    bars = [c for c in components.containers if isinstance(c, BarContainer)]
    assert bars and all(c.errorbar is not None for c in bars)
    plt.close(fig)
