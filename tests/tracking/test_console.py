"""What ``lossexp train`` prints: the epoch line reads the total as its parts, and the summary."""
from __future__ import annotations

from lossexp.tracking import console

LOGS = {"loss": 0.5925, "loss/task": 0.3936, "loss/hist_avg": 0.0496, "loss/activity": 0.0695,
        "term/activity": 69.5, "accuracy": 0.9145, "val_loss": 0.46, "val_loss/task": 0.3119,
        "val_loss/activity": 0.0698, "val_accuracy": 0.9471, "weight/coef/x": 1.0}


def test_epoch_line_shows_the_breakdown_in_the_configured_order():
    line = console.epoch_line(4, 5, LOGS, ["hist_avg", "activity"], 0.42)
    assert line == ("epoch 4/5  loss 0.5925 = task 0.3936 + hist_avg 0.0496 + activity 0.0695"
                    " │ val_loss 0.46 = task 0.3119 + activity 0.0698 │ accuracy 0.9145 (val 0.9471) │ 0.4s")


def test_a_gan_without_a_total_lists_its_players():
    logs = {"loss/generator": 0.7, "loss/discriminator": 1.3, "ring/modes_covered": 8.0}
    assert console.epoch_line(1, 1, logs, [], 1.0) == (
        "epoch 1/1  loss discriminator 1.3 generator 0.7 │ ring/modes_covered 8 │ 1.0s")


def test_verbosity_picks_keras_progress_bar_or_our_lines():
    assert console.fit_verbosity(1) == 1 and console.fit_verbosity(2) == 0 and console.fit_verbosity(0) == 0
    assert len(console.callbacks(2, 5, [])) == 1 and console.callbacks(1, 5, []) == [] == console.callbacks(0, 5, [])


def test_summary_gives_losses_weights_run_and_address():
    history = {key: [(0, 9.9), (100, value)] for key, value in LOGS.items()}
    history.update({"weight/kl": [(0, 0.0), (100, 0.5)], "weight/coef/a": [(100, 0.2)], "weight/a": [(100, 0.2)]})
    text = console.summary(history, {"hist_avg": 0.01, "activity": 0.001, "kl": {"schedule": "linear"}, "a": {}},
                           "cnn·hist_avg+activity", "d3a6363a91fb49b8", "http://127.0.0.1:5000/#/x", 13.14,
                           "  (lossexp ui)")
    assert text.splitlines() == [
        "lossexp: cnn·hist_avg+activity trained in 13.1s",
        "  loss     0.5925 = task 0.3936 + hist_avg 0.0496 + activity 0.0695",
        "  val_loss 0.46 = task 0.3119 + activity 0.0698",
        "  metrics  accuracy 0.9145 (val 0.9471)",
        "  weights  hist_avg 0.01 · activity 0.001 · kl 0.5 (scheduled) · a 0.2 (trained)",
        "  run      d3a6363a91fb49b8",
        "  view     http://127.0.0.1:5000/#/x  (lossexp ui)"]


def test_summary_lists_a_weighting_methods_last_weights_and_no_gradient_diagnostics():
    history = {key: [(100, value)] for key, value in LOGS.items()}
    history.update({"weight/dwa/task": [(100, 1.25)], "weight/dwa/hist_avg": [(100, 0.75)],
                    "weight_grad/task/norm": [(1, 2.0)], "weight_grad/conflicts": [(1, 1.0)]})
    lines = console.summary(history, {"hist_avg": 0.01}, "run", None, None, 1.0).splitlines()
    assert lines[3] == "  metrics  accuracy 0.9145 (val 0.9471)"
    assert lines[4] == "  weights  hist_avg 0.01 · dwa: task 1.25, hist_avg 0.75"


def test_summary_shows_a_constant_weight_changed_in_training_at_its_last_value():
    from lossexp.tracking.console import weights_line

    assert weights_line({"weight/hist_avg": 0.3}, {"hist_avg": 0.01}) == "hist_avg 0.3 (changed in training)"
    assert weights_line({"weight/hist_avg": 0.3}, {"hist_avg": {"schedule": "linear"}}) == "hist_avg 0.3 (scheduled)"


def test_the_learning_rate_is_a_row_of_its_own_not_a_metric():
    history = {key: [(100, value)] for key, value in LOGS.items()}
    lines = console.summary({**history, "learning_rate": [(0, 0.001), (100, 0.001)]}, {}, "run", None, None, 1.0)
    assert "  metrics  accuracy 0.9145 (val 0.9471)" in lines.splitlines() and "  lr       0.001" in lines
    scheduled = {"learning_rate": [(0, 0.001), (50, 0.0005), (100, 2.5e-05)]}
    assert console.learning_rates_line(scheduled) == "0.001 → 2.5e-05"
    players = {"learning_rate/generator": [(0, 1e-4)], "learning_rate/discriminator": [(0, 2e-4)]}
    assert console.learning_rates_line(players) == "discriminator 0.0002 · generator 0.0001"
