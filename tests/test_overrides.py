import numpy as np
import pytest

from lossexp.errors import ConfigError
from lossexp.overrides import parse_composition, rewrite_loss, unreadable_override

KNOWN = ["activity", "coef", "hist_avg"]


@pytest.mark.parametrize("given, expected", [
    (["loss=hist_avg+activity"], ["loss=[hist_avg,activity]"]),
    (["loss=hist_avg"], ["loss=[hist_avg]"]),
    (["loss=none"], ["loss=[]"]),
    (["loss=hist_avg+activity,activity"], ["loss=[hist_avg,activity],[activity]"]),
    (["loss=none,coef"], ["loss=[],[coef]"]),
    (["loss=[coef]"], ["loss=[coef]"]),
    # Hydra's sweep function (an Optuna search space's form): each alternative a '+' form or a list
    (["loss=choice([hist_avg],[activity])"], ["loss=[hist_avg],[activity]"]),
    (["loss=choice(hist_avg+activity, coef)"], ["loss=[hist_avg,activity],[coef]"]),
    (["loss=choice(none,[coef])"], ["loss=[],[coef]"]),
    (["loss.hist_avg.weight=0.1", "model=mlp"], ["loss.hist_avg.weight=0.1", "model=mlp"]),
    (["+loss.x=1"], ["+loss.x=1"]),
    # one output's entry under a per-output option's null default: set or added (Hydra: "Unknown key")
    (["task.loss_weights.reg=0.1,1"], ["++task.loss_weights.reg=0.1,1"]),
    (["task.loss.depth=huber", "task.loss=huber"], ["++task.loss.depth=huber", "task.loss=huber"]),
])
def test_rewrite(given, expected):
    assert rewrite_loss(given, KNOWN) == expected


@pytest.mark.parametrize("bad, fragment", [
    ("loss=+", "component names joined by '+'"),
    ("loss=hist_avg++activity", "component names joined by '+'"),
    ("loss=hist_avg+", "component names joined by '+'"),
    ("loss=", "component names"),
    ("loss=hist_avg+hist_avg", "hist_avg repeats"),
    ("loss=nope", "Unknown loss component 'nope': valid choices are activity, coef, hist_avg"),
    ("loss=coef+none", "'none' alone"),
    ("loss=choice([hist_avg],[activty])", "Unknown loss component 'activty': valid choices are activity, coef, hist_avg"),
    ("loss=choice(coef+coef)", "coef repeats"),
    ("loss=range(1,3)", "or choice(a+b,c), got 'range(1,3)'"),  # no meaning for a composition
    ("loss=shuffle([coef],[hist_avg])", "got 'shuffle([coef],[hist_avg])'"),
    ("loss=choice(coef", "Invalid override 'loss=choice(coef': 'choice(coef' cannot be read"),
])
def test_malformed_compositions_fail_with_one_line(bad, fragment):
    with pytest.raises(ConfigError) as info:
        rewrite_loss([bad], KNOWN)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_composition_keeps_order():
    assert parse_composition("coef+hist_avg", KNOWN) == ["coef", "hist_avg"]


@pytest.mark.parametrize("override, hydra", [
    ("loss.kl.weight={schedule: sigmoid, midpoint: 100}",
     ["++loss.kl.weight=null", "++loss.kl.weight={schedule: sigmoid, midpoint: 100}"]),
    ("loss.coef.weight={value: 1, trainable: true}",
     ["++loss.coef.weight=null", "++loss.coef.weight={value: 1, trainable: true}"]),
    ("loss.coef.weight=0.5", ["loss.coef.weight=0.5"]),  # a number replaces a mapping already
    ("loss.kl.weight.steps=200", ["loss.kl.weight.steps=200"]),  # one key of the mapping: merged, as usual
])
def test_a_whole_weight_mapping_replaces_the_configured_weight(override, hydra):
    assert rewrite_loss([override], KNOWN) == hydra


def test_replaced_weight_composes_with_only_the_new_keys():
    """Merged key by key, the linear schedule's steps would land in the sigmoid's options."""
    from hydra import compose, initialize_config_dir

    from lossexp import CONF_DIR

    overrides = rewrite_loss(["loss=coef", "loss.coef.weight={schedule: sigmoid, midpoint: 50, sharpness: 0.1}"],
                             KNOWN)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    assert dict(cfg.loss.coef.weight) == {"schedule": "sigmoid", "midpoint": 50, "sharpness": 0.1}


def test_a_whole_mapping_is_set_where_the_config_has_no_such_key_yet():
    """A part registered without a YAML (a notebook's component or optimizer) composes as a node of its name
    alone: the rewrite deleted the key first, and Hydra failed, "Could not delete from config.
    'optimizer.learning_rate' does not exist" (``lossexp.fit(…, optimizer={'name': 'mine', 'learning_rate':
    {'schedule': …}})``, a trainable weight of a notebook's component)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from lossexp import CONF_DIR

    node = OmegaConf.create({"name": "yamlless_optimizer"})
    OmegaConf.set_struct(node, False)
    ConfigStore.instance().store(group="optimizer", name="yamlless_optimizer", node=node)
    overrides = rewrite_loss(["optimizer=yamlless_optimizer", "loss=coef",
                              "optimizer.learning_rate={schedule: cosine_decay, decay_steps: 10}",
                              "loss.coef.weight={schedule: linear, steps: 5}"], KNOWN)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    assert dict(cfg.optimizer) == {"name": "yamlless_optimizer",
                                   "learning_rate": {"schedule": "cosine_decay", "decay_steps": 10}}
    assert dict(cfg.loss.coef.weight) == {"schedule": "linear", "steps": 5}


def test_numpy_scalars_are_the_python_values_they_hold_in_an_override():
    from lossexp.overrides import override_value, plain

    given = {"weight": np.float32(0.5), "steps": np.int64(3), "on": np.bool_(True), "layers": (np.str_("a"),),
             "values": [np.array(2.0)]}
    assert plain(given) == {"weight": 0.5, "steps": 3, "on": True, "layers": ("a",), "values": [2.0]}
    assert type(plain(given)["steps"]) is int and type(plain(given)["weight"]) is float
    assert override_value(given) == '{weight: 0.5, steps: 3, on: true, layers: ["a"], values: [2.0]}'


@pytest.mark.parametrize("override, said", [
    ("model=mlp,", "it ends where a value is expected"),
    ("trainer.epochs=1,,2", "',' where a value is expected"),
    ("loss.hist_avg.weight=0.1,0.2)", "')' after the value's end"),
    ("model=[mlp", "'[mlp' cannot be read"),
    ("tracking.uri='x", "a quote is not closed, or a character needs quoting"),
])
def test_an_override_the_grammar_cannot_read_is_named_with_where_in_words(override, said):
    """Hydra's parser says ``mismatched input '<EOF>' expecting {':', BRACKET_OPEN, …}`` and, for a
    sweep's overrides parsed together, names none of them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    with pytest.raises(OverrideParseException) as raised:
        OverridesParser.create().parse_overrides(["trainer.seed=1", override])
    line = str(unreadable_override(raised.value))
    assert line.startswith(f"Invalid override {override!r}: {said} (key=value; a sweep's values key=a,b;")
    assert "\n" not in line and "EOF" not in line and "BRACKET" not in line
