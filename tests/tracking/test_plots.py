from lossexp.tracking.plots import plot_run


def test_plot_has_a_panel_per_kind_of_series(tmp_path):
    history = {
        "loss": [(1, 2.0), (2, 1.5)], "loss/hist_avg": [(1, 0.1), (2, 0.2)], "val_loss/activity": [(2, 0.3)],
        "weight/coef/coef": [(0, 1.0), (2, 0.8)], "weight_drift/from_init/hidden_1": [(1, 0.01), (2, 0.02)],
    }
    path = plot_run(history, tmp_path / "p" / "run.png", "mlp·hist_avg")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
