"""The run's PNG: total, task and each component distinguishable, validation at every epoch."""
import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

from lossexp.tracking.plots import plot_run, run_figure

EPOCH_ENDS = (45, 90, 135)
HISTORY = {
    "loss": [(s, 2.0 - s / 100) for s in range(10, 136, 10)],
    "loss/task": [(s, 1.99 - s / 100) for s in range(10, 136, 10)],  # ≈ the total: the components are small
    "loss/hist_avg": [(s, 0.001 * s) for s in range(10, 136, 10)],
    "loss/activity": [(s, 0.002 * s) for s in range(10, 136, 10)],
    "val_loss": [(s, 1.5) for s in EPOCH_ENDS], "val_loss/task": [(s, 1.49) for s in EPOCH_ENDS],
    "val_loss/activity": [(s, 0.01) for s in EPOCH_ENDS],
    "weight/coef/coef": [(0, 1.0), (135, 0.8)], "weight_drift/from_init/hidden_1": [(10, 0.01), (135, 0.02)],
}


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_total_task_and_components_are_distinguishable_and_validation_has_every_epoch():
    fig = run_figure(HISTORY, "mlp·hist_avg+activity")
    try:
        totals, parts, weights, drift = fig.axes
        lines = lines_by_label(totals)
        total, task = lines["loss (total)"], lines["loss/task"]
        assert total.get_linewidth() >= 3 * task.get_linewidth()  # a wide band under a thin line
        assert to_hex(total.get_color()) != to_hex(task.get_color())
        assert totals.get_lines().index(total) < totals.get_lines().index(task)  # drawn first: underneath
        validation = lines["loss/task (validation)"]
        assert list(validation.get_xdata()) == list(EPOCH_ENDS) and validation.get_marker() == "o"
        assert to_hex(validation.get_color()) == to_hex(task.get_color()) and validation.get_linestyle() == "--"
        components = lines_by_label(parts)
        colours = {to_hex(line.get_color()) for label, line in components.items() if "validation" not in label}
        assert len(colours) == 2 and parts.get_yscale() == "log"
        assert any(label.startswith("loss/activity, ") and "% of loss" in label for label in components)
        assert "weight/coef/coef" in lines_by_label(weights) and "hidden_1" in lines_by_label(drift)
    finally:
        plt.close(fig)


def test_a_components_state_stays_out_of_the_panel_of_weights():
    """A queue's norm (thousands) beside a weight of 0.01 flattened the weights' lines; alone, it makes no panel."""
    fig = run_figure({**HISTORY, "weight/state/queue/keys.norm": [(0, 0.0), (135, 2896.3)]}, "mlp·queue")
    alone = run_figure({"loss": HISTORY["loss"], "weight/state/queue/keys.norm": [(0, 0.0), (135, 2896.3)]}, "mlp·queue")
    try:
        assert list(lines_by_label(fig.axes[2])) == ["weight/coef/coef"] and len(alone.axes) == 1
    finally:
        plt.close(fig)
        plt.close(alone)


def test_the_png_is_the_figure_and_its_figure_is_closed(tmp_path):
    import io
    import struct

    expected = run_figure(HISTORY, "mlp·hist_avg+activity")
    drawn = io.BytesIO()
    expected.savefig(drawn, dpi=100, bbox_inches="tight")  # as plot_run saves it: the size depends on the fonts
    size = struct.unpack(">II", drawn.getvalue()[16:24])
    plt.close(expected)
    open_before = set(plt.get_fignums())
    path = plot_run(HISTORY, tmp_path / "p" / "run.png", "mlp·hist_avg+activity")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == size  # four panels, as drawn
    assert set(plt.get_fignums()) == open_before  # its figure was closed


def test_a_deep_networks_drift_names_the_layers_that_drifted_most_and_fits_its_legend():
    """A MobileNet's 100+ layers each in the legend overflowed the panel (Matplotlib's tight-layout
    warning) and named nothing readable: the 10 that drifted most are named, the rest pale."""
    import warnings

    deep = {"loss": HISTORY["loss"], **{f"weight_drift/from_init/layer_{i:03d}": [(10, 0.0), (135, i / 100)]
                                        for i in range(120)}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Tight layout not applied" was one
        fig = run_figure(deep, "deep")
    try:
        drift = fig.axes[-1]
        named = [line.get_label() for line in drift.get_lines() if not line.get_label().startswith("_")]
        assert named == [f"layer_{i:03d}" for i in range(119, 109, -1)] + ["110 other layers"]
        assert len(drift.get_lines()) == 121 and "the 10 that drifted most named" in drift.get_title()
    finally:
        plt.close(fig)


def test_a_long_runs_loss_is_on_a_log_scale_and_its_validation_markers_are_thinned():
    """A 100-epoch run (125,000 steps) drew its loss, 4.7 at the start and 0.02 after step 2,000, on a
    linear axis — flat on zero for all but its first epochs — and a marker at each of its epochs (a
    smear at 1,000 epochs): a loss spanning a factor of 10 is now on a log scale, and at most 40
    validation markers are drawn; a short run's panel stays linear (the test above)."""
    steps = range(10, 1_000_001, 10)
    ends = range(1_000, 1_000_001, 1_000)  # 1,000 epochs
    long = {"loss": [(s, 4.7 / (1 + s / 100)) for s in steps], "loss/task": [(s, 4.6 / (1 + s / 100)) for s in steps],
            "val_loss": [(s, 4.7 / (1 + s / 100)) for s in ends]}
    fig = run_figure(long, "long")
    try:
        [totals] = fig.axes
        assert totals.get_yscale() == "log"
        validation = lines_by_label(totals)["loss (total) (validation)"]
        assert len(validation.get_xdata()) == 1_000 and validation.get_markevery() == 25  # 40 markers
    finally:
        plt.close(fig)
    fig = run_figure(HISTORY, "short")
    try:
        assert fig.axes[0].get_yscale() == "linear"
    finally:
        plt.close(fig)
