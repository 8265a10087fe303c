"""The Hydra plugin's ``params:`` syntax becomes Optuna distributions; mistakes are one line."""
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from lossexp.errors import ConfigError
from lossexp.sweeps.search_space import bounds, format_value, parse


def test_intervals_ranges_choices_and_fixed_values():
    space = parse({"loss.hist_avg.weight": "tag(log, interval(1e-4, 1.0))", "model.filters": "range(8, 33, 8)",
                   "optimizer.learning_rate": "interval(0.001, 0.1)", "trainer.batch_size": "choice(16, 32)"},
                  ["loss=[hist_avg],[activity]", "trainer.epochs=2"])
    assert space.distributions["loss.hist_avg.weight"] == FloatDistribution(1e-4, 1.0, log=True)
    assert space.distributions["model.filters"] == IntDistribution(8, 32, step=8)  # below stop, as Hydra's range
    assert space.distributions["optimizer.learning_rate"] == FloatDistribution(0.001, 0.1)
    assert space.distributions["trainer.batch_size"] == CategoricalDistribution([16, 32])
    assert space.distributions["loss"] == CategoricalDistribution(["[hist_avg]", "[activity]"])
    assert space.fixed == ["trainer.epochs=2"]
    assert space.trial_overrides({"model.filters": 16}) == ["model.filters=16", "trainer.epochs=2"]
    assert bounds(space)[0][:2] == ["loss.hist_avg.weight=0.0001", "model.filters=8"]
    assert bounds(space)[1][:2] == ["loss.hist_avg.weight=1.0", "model.filters=32"]


def test_a_choice_of_lists_reaches_a_trial_as_the_lists_hydra_reads():
    """Optuna holds ``[hist_avg]`` as text; a trial gave it quoted (``loss='[hist_avg]'``), which every trial's
    config refused as the unknown component '[hist_avg]' (a choice of ``model.hidden_units`` as a string)."""
    from lossexp.precheck import compose_validated

    space = parse({}, ["loss=[hist_avg],[hist_avg,activity],[]", "model.hidden_units=choice([8],[16,16])",
                       "model=mlp", "data=regression"])
    trial = space.trial_overrides({"loss": "[hist_avg,activity]", "model.hidden_units": "[16,16]"})
    assert trial[:2] == ["loss=[hist_avg,activity]", "model.hidden_units=[16,16]"]
    config = compose_validated(trial)
    assert list(config.loss) == ["hist_avg", "activity"] and list(config.model.options["hidden_units"]) == [16, 16]
    assert [end[:2] for end in bounds(space)] == [["loss=[hist_avg]", "model.hidden_units=[8]"],
                                                  ["loss=[]", "model.hidden_units=[16,16]"]]
    assert parse({"loss": "choice([coef],[hist_avg])"}, ["loss=choice(a, b)"]).trial_overrides({"loss": "a b"}) == \
        ["loss='a b'"]  # the command line's plain choice wins over the params' lists: a string again


def test_the_command_line_wins_over_params_on_the_same_key():
    space = parse({"loss.activity.weight": "interval(0.1, 1)"}, ["loss.activity.weight=choice(0.5, 0.7)"])
    assert space.distributions == {"loss.activity.weight": CategoricalDistribution([0.5, 0.7])}


def test_the_grid_of_discrete_distributions_and_none_of_an_interval():
    space = parse({"a": "range(0.0, 1.0, 0.25)", "b": "choice(x, y)"}, [])
    assert space.grid() == {"a": [0.0, 0.25, 0.5, 0.75], "b": ["x", "y"]}
    with pytest.raises(ConfigError, match="expected choice\\(…\\) or range\\(…\\) for hydra.sweeper.sampler=grid"):
        parse({"c": "interval(0, 1)"}, []).grid()


def test_values_hydra_cannot_parse_bare_are_quoted():
    assert format_value("a b") == "'a b'" and format_value("adam") == "adam" and format_value(None) == "null"


@pytest.mark.parametrize("value, expected", [
    ("interval(1, 0)", "interval(low, high) with low < high"),
    ("tag(log, interval(0, 1))", "tag(log, interval(low, high)) with 0 < low"),
    ("tag(log, interval(-1e-3, 1))", "tag(log, interval(low, high)) with 0 < low"),
    ("tag(grid, interval(1, 2))", "tag(log, interval(low, high)) (the only tag is log)"),
    ("range(5, 1)", "range(start, stop[, step]) with at least one value below stop"),
])
def test_invalid_ranges_name_the_key_and_the_value(value, expected):
    with pytest.raises(ConfigError) as error:
        parse({"k": value}, [])
    assert str(error.value) == f"Invalid value for hydra.sweeper.params.k: expected {expected}, got {value!r}"
