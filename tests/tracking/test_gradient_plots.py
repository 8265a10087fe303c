"""The gradient figure: a heat map of every pair's cosine over the sampled steps (colour scale fixed at
[−1, 1]), the norms on a log scale and the shares of the update — and no file for a run without
diagnostics."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from lossexp import metric_names as names
from lossexp.tracking.gradient_plots import gradient_figure, plot_gradients

STEPS = [1, 11, 21]


def history():
    found = {}
    for task, norm in (("task", 2.0), ("hist_avg", 0.05), ("activity", 0.0)):
        found[names.gradient(task, "norm")] = [(s, norm * s) for s in STEPS]
        found[names.gradient(task, "share")] = [(s, 1.0 if task == "task" else 0.0) for s in STEPS]
        found[names.gradient(task, "norm", "hidden_1")] = [(s, 9.0) for s in STEPS]  # a layer's: not drawn
    found[names.gradient_cosine("hist_avg", "task")] = [(s, -0.5) for s in STEPS]
    found[names.gradient_cosine("activity", "task")] = [(s, 0.25) for s in STEPS]
    found[names.gradient_cosine("activity", "hist_avg")] = [(1, 0.9), (21, 0.1)]  # a missing step stays blank
    found[names.conflicts()] = [(s, 1.0) for s in STEPS]
    return found


def test_heat_map_rows_are_pairs_and_columns_sampled_steps():
    fig = gradient_figure(history(), "run")
    heat, norms, shares = fig.axes[:3]
    [mesh] = heat.collections
    grid = mesh.get_array()
    assert grid.shape == (3, 3)
    assert [t.get_text() for t in heat.get_yticklabels()] == ["task · hist_avg", "task · activity",
                                                               "hist_avg · activity"]
    np.testing.assert_allclose(grid[0].filled(np.nan), -0.5)
    assert grid.mask[2].tolist() == [False, True, False] and grid[2, 2] == 0.1
    assert mesh.get_clim() == (-1, 1)
    assert norms.get_yscale() == "log" and [line.get_label() for line in norms.get_lines()] == [
        "task", "hist_avg", "activity"]
    assert np.isnan(norms.get_lines()[2].get_ydata()).all()  # a zero norm has no place on a log scale
    assert shares.get_yscale() == "linear" and shares.get_lines()[0].get_ydata().tolist() == [1.0, 1.0, 1.0]
    plt.close(fig)


def test_png_written_only_with_diagnostics(tmp_path):
    path = plot_gradients(history(), tmp_path / "plots" / "gradients.png", "run")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_gradients({"loss": [(1, 1.0)]}, tmp_path / "none.png", "run") is None
    assert not (tmp_path / "none.png").exists()
    players = {f"weight_grad/{p}/{key}": [(1, 0.5)] for p in ("generator", "discriminator")
               for key in ("norm", "adversarial/norm", "adversarial/cos_update")}  # a GAN's: no parts of one update
    assert plot_gradients(players, tmp_path / "gan.png", "run") is None
