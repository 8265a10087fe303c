"""The objective a job hands the sweeper: the final value of ``objective.metric``."""
import pytest

from types import SimpleNamespace

from lossexp.errors import ConfigError
from lossexp.sweeps.objective import ObjectiveMissing, best, objective_value, recorded_objective


def test_final_value_of_the_named_metric_with_val_loss_falling_back():
    history = {"loss": [3.0, 2.0], "val_loss": [2.5, 1.5], "val_accuracy": [0.5, 0.75]}
    assert objective_value(history) == 1.5
    assert objective_value(history, "val_accuracy") == 0.75
    assert objective_value({"loss": [3.0, 2.0]}) == 2.0  # no validation split
    def modes_missed(history):  # what the adversarial regime offers for the ring
        return 8.0 - history["ring/modes_covered"][-1]

    assert objective_value({"ring/modes_covered": [3, 6]}, fallback=modes_missed) == 2.0  # a GAN: modes missed
    assert objective_value({"loss": [1.0, 0.5], "ring/x": [1]}, fallback=lambda h: None) == 0.5


def test_a_metric_the_run_did_not_record_names_the_ones_it_did():
    with pytest.raises(ObjectiveMissing, match="'val_mae' was not recorded by this run; it recorded loss, val_loss"):
        objective_value({"loss": [1.0], "val_loss": [1.0]}, "val_mae")


def test_a_misspelled_objective_is_one_line_after_training():
    """It was a RuntimeError: a traceback ending a run that had trained (``objective.metric=nope``)."""
    assert issubclass(ObjectiveMissing, ConfigError)


def test_a_run_without_val_loss_or_loss_records_no_default_objective_and_says_so(capsys):
    """A regime of the user's whose model reports ``loss/critic`` and ``loss/generator`` (WGAN-GP)
    trained, then ended FAILED with a traceback: the default objective, val_loss, had no fallback."""
    history = {"loss/critic": [1.0], "loss/generator": [0.5]}
    default = SimpleNamespace(metric="val_loss", direction="minimize", metrics=None, directions=None)
    assert recorded_objective(history, default, fallback=lambda h: None) is None
    assert capsys.readouterr().err == ("lossexp: warning: objective.metric 'val_loss' was not recorded by this run; "
                                       "it recorded loss/critic, loss/generator; no objective is recorded "
                                       "(objective.metric=… names one)\n")
    assert recorded_objective(history, SimpleNamespace(**{**vars(default), "metric": "loss/critic"})) == 1.0
    with pytest.raises(ObjectiveMissing):
        recorded_objective(history, SimpleNamespace(**{**vars(default), "metric": "val_mae"}))


def test_a_regimes_fallback_that_raises_is_one_line_naming_its_file(tmp_path, monkeypatch):
    """A regime of the user's whose ``fallback_objective`` misspelled a metric ended a trained run in a
    ``KeyError: 'loss/critc'`` traceback (exit 1)."""
    import importlib.util

    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = []\n')
    (tmp_path / "regime.py").write_text('def fallback(history):\n    return history["loss/critc"][-1]\n')
    monkeypatch.setenv("LOSSEXP_PROJECT", str(tmp_path))
    spec = importlib.util.spec_from_file_location("regime", tmp_path / "regime.py")
    regime = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regime)
    default = SimpleNamespace(metric="val_loss", direction="minimize", metrics=None, directions=None)
    with pytest.raises(ConfigError) as raised:
        recorded_objective({"loss/critic": [1.0]}, default, fallback=regime.fallback)
    assert str(raised.value) == (f"Your code failed computing the run's objective at {tmp_path / 'regime.py'}:2 "
                                 "(in fallback): KeyError: 'loss/critc'")


def test_best_follows_the_direction():
    scores = {"a": 2.0, "b": 1.0, "c": 3.0}
    assert best(scores, "minimize") == "b" and best(scores, "maximize") == "c" and best({}, "minimize") is None


def test_a_nan_is_never_best_wherever_it_stands():
    nan = float("nan")
    for scores in ({"a": nan, "b": 2.0, "c": 1.0}, {"b": 2.0, "a": nan, "c": 1.0}):
        assert best(scores, "minimize") == "c" and best(scores, "maximize") == "b"
    assert best({"a": nan}, "minimize") is None


def _objective(**kwargs):
    from lossexp.config import ObjectiveConfig

    return ObjectiveConfig(**kwargs)


def test_several_objectives_return_a_list_and_log_one_metric_each():
    from lossexp.sweeps.objective import objective_keys, objective_points, objective_values, objectives

    several = _objective(metrics=["val_loss", "loss/activity"], directions=["minimize"])
    assert objectives(several) == [("val_loss", "minimize"), ("loss/activity", "minimize")]
    history = {"val_loss": [2.0, 1.5], "loss/activity": [0.3, 0.2]}
    assert objective_values(history, several) == [1.5, 0.2]
    assert objective_points([1.5, 0.2], several, 7) == [("objective", 1.5, 7), ("objective/val_loss", 1.5, 7),
                                                        ("objective/loss/activity", 0.2, 7)]
    assert objective_keys(["val_loss", "loss/activity"]) == ["objective/val_loss", "objective/loss/activity"]
    single = _objective(metric="val_accuracy", direction="maximize")  # today's keys keep working
    assert objectives(single) == [("val_accuracy", "maximize")]
    assert objective_values({"val_accuracy": [0.5, 0.9]}, single) == 0.9
    assert objective_points(0.9, single, 3) == [("objective", 0.9, 3)]
    assert objective_keys(["val_accuracy"]) == ["objective"]


@pytest.mark.parametrize("kwargs, message", [
    ({"directions": ["up"], "metrics": ["val_loss"]},
     "Unknown objective.directions 'up': valid choices are maximize, minimize"),
    ({"metrics": ["val_loss", "val_loss"]}, "expected distinct metric names"),
    ({"metrics": ["val_loss", "loss", "loss/task"], "directions": ["minimize", "maximize"]},
     "expected one direction per metric of objective.metrics \\(3\\)"),
])
def test_bad_objectives_are_one_line_errors(kwargs, message):
    from lossexp.errors import ConfigError
    from lossexp.sweeps.objective import check_objective

    with pytest.raises(ConfigError, match=message):
        check_objective(_objective(**kwargs))
