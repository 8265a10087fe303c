"""The history figure: a panel per metric (the objective's, then each component's training and validation
loss), a line per group, a band of ± one standard error only where a group has several runs."""
import matplotlib.pyplot as plt
import numpy as np

from lossexp.reports.groups import group_rows
from lossexp.reports.history import Series
from lossexp.reports.history_plot import history_figure
from lossexp.reports.query import RunRow


def _row(run_id: str, weight: str, seed: str) -> RunRow:
    return RunRow(run_id, f"w={weight},s={seed}", "FINISHED", "hist_avg", {"w": weight, "s": seed}, 1.0, None, 1.0,
                  1.0, None, component_losses={"task": 0.5, "hist_avg": 0.1})


def test_a_band_for_seeds_a_line_for_a_single_run_and_panels_per_metric():
    rows = [_row("a", "0", "0"), _row("b", "0", "1"), _row("c", "0.1", "0")]
    steps = np.arange(1, 11)
    histories = {}
    for i, row in enumerate(rows):
        for key in ("val_loss", "loss/task", "val_loss/task", "loss/hist_avg"):
            histories[row.run_id, key] = Series(steps, steps.astype(float), (1 + i) * 100.0 / steps)
    fig = history_figure(group_rows(rows, ["w"]), histories, "val_loss", "sweep")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["val_loss (—)", "loss/task (—) · val_loss/task (--)",
                                                  "loss/hist_avg (—)"]
    objective = visible[0]
    assert len(objective.lines) == 2 and len(objective.collections) == 1  # group w=0 (2 seeds) has a band
    assert objective.get_yscale() == "log"  # 10 … 300: over a decade
    np.testing.assert_allclose(objective.lines[0].get_ydata(), 150.0 / steps)  # the two seeds' mean
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["w=0", "w=0.1"]
    plt.close(fig)


def test_long_component_names_and_group_labels_do_not_overlap():
    """Panel titles, the legend and the panels stay apart at the figure's own size (Matplotlib's extents)."""
    import itertools

    rows, histories = [], {}
    steps = np.arange(1, 11)
    for i in range(6):
        row = RunRow(f"r{i}", f"run{i}", "FINISHED", "x", {"loss.cross_layer_coefficient.weight.value": str(i),
                     "optimizer.learning_rate": "0.001", "trainer.seed": "0"}, 1.0, None, 1.0, 1.0, None,
                     component_losses={"task": 0.5, "cross_layer_coefficient": 0.1, "activity_penalty": 0.1})
        rows.append(row)
        for key in ("val_loss", "loss/task", "val_loss/task", "loss/cross_layer_coefficient",
                    "val_loss/cross_layer_coefficient", "loss/activity_penalty", "val_loss/activity_penalty"):
            histories[row.run_id, key] = Series(steps, steps.astype(float), (1 + i) / steps)
    groups = group_rows(rows, ["loss.cross_layer_coefficient.weight.value", "optimizer.learning_rate"])
    fig = history_figure(groups, histories, "val_loss", "sweep 2026-12-06/12-00-00 · " + "x=1,2,3 " * 20)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
    boxes += [fig.legends[0].get_window_extent(renderer), fig._suptitle.get_window_extent(renderer)]
    for a, b in itertools.combinations(boxes, 2):
        assert not (a.x0 + 1 < b.x1 and b.x0 + 1 < a.x1 and a.y0 + 1 < b.y1 and b.y0 + 1 < a.y1), "overlap"
    tight = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    assert tight.x0 >= -0.5 and tight.y0 >= -0.5 and tight.x1 <= fig.bbox.x1 + 0.5 and tight.y1 <= fig.bbox.y1 + 0.5
    plt.close(fig)
