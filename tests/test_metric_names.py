"""The metric names and the MLflow UI sections they make: the loss breakdown first, drift in three."""
from lossexp import metric_names as names


def ui_sections(metrics):
    """The MLflow UI's order (see INTEGRATIONS.md): named sections sorted, then "Model metrics"."""
    named = sorted({names.section(m) for m in metrics} - {"Model metrics"})
    return named + (["Model metrics"] if any(names.section(m) == "Model metrics" for m in metrics) else [])


def test_the_loss_breakdown_comes_first_and_drift_is_three_sections():
    layers, components = ("conv_1", "conv_2", "hidden_1", "output"), ("hist_avg", "activity", "coef")
    metrics = ["loss", "val_loss", "accuracy", names.STARTUP, names.loss(names.TASK)]
    metrics += [f(c) for c in components for f in (names.loss, names.term, names.weight, names.coef)]
    metrics += [names.validation(names.loss(c)) for c in components]
    metrics += [names.drift(stat, layer) for stat in names.DRIFT_STATS for layer in layers]
    assert ui_sections(metrics) == ["loss", "term", "val_loss", "weight", "weight/coef", "weight_drift/from_avg",
                                    "weight_drift/from_init", "weight_drift/per_step", "Model metrics"]


def test_predicates():
    assert names.is_loss_part("val_loss/task") and not names.is_loss_part("loss/generator/adversarial")
    assert names.is_coef("weight/coef/a") and not names.is_coef("weight/a")
    assert names.is_drift("weight_drift/from_init/x", "from_init") and not names.is_drift("weight/x")


def test_gradient_diagnostics_and_method_weights_follow_the_loss_breakdown():
    from lossexp.training.gradient_diagnostics import statistic_names

    tasks = ["task", "hist_avg", "activity"]
    metrics = ["loss", names.loss(names.TASK), names.term("activity"), names.validation(names.loss("activity"))]
    metrics += statistic_names(tasks) + statistic_names(tasks, "hidden_1")
    metrics += [names.method_weight("dwa", task) for task in tasks]
    metrics += [names.drift("from_init", "hidden_1")]
    assert ui_sections(metrics) == [
        "loss", "term", "val_loss", "weight/dwa", "weight_drift/from_init", "weight_grad", "weight_grad/activity",
        "weight_grad/hist_avg", "weight_grad/task", "Model metrics"]
