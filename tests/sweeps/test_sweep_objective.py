"""The objective a job hands the sweeper: the final value of ``objective.metric``."""
import pytest

from lossexp.sweeps.objective import ObjectiveMissing, best, objective_value


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


def test_best_follows_the_direction():
    scores = {"a": 2.0, "b": 1.0, "c": 3.0}
    assert best(scores, "minimize") == "b" and best(scores, "maximize") == "c" and best({}, "minimize") is None
