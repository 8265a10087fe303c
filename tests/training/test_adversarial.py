"""The adversarial regime builds a GAN from config: ``player:`` per loss entry, one instance per
player under ``both``, and one-line errors that name the user's key for anything that cannot apply."""
from __future__ import annotations

import pytest

from conftest import built, composed_config
from lossexp.errors import ConfigError
from lossexp.losses.entries import build_components

GAN = ("model=gan", "data=ring", "data.n_samples=64", "model.latent_dim=4", "model.generator_units=[8,8]",
       "model.discriminator_units=[8]")


def build(loss: dict):
    config = composed_config(*GAN, "loss=none")
    config.loss = loss  # set after validation: the regime checks the entries itself when it builds
    return built(config)[0]


def names(model, player):
    return [c.name for c in model.player_components(player)]


def test_both_builds_one_instance_per_player_attached_to_that_players_weights():
    model = build({"hist_avg": {"weight": 0.01, "player": "both"}})
    assert names(model, "generator") == ["hist_avg_generator"]
    assert names(model, "discriminator") == ["hist_avg_discriminator"]
    for player in ("generator", "discriminator"):
        [component] = model.player_components(player)
        weights = model.player_network(player).trainable_weights
        assert [r.shape for r in component.reference_values()] == [w.shape for w in weights]
    assert {"term/hist_avg_generator", "loss/hist_avg_discriminator"} <= set(model.metric_names())


def test_a_missing_player_means_both_and_a_single_player_keeps_the_key():
    assert names(build({"hist_avg": {}}), "discriminator") == ["hist_avg_discriminator"]
    model = build({"hist_avg": {"player": "generator"},
                   "norm_d": {"kind": "cross_layer", "player": "discriminator", "layers": ["hidden_1"]}})
    assert names(model, "generator") == ["hist_avg"] and names(model, "discriminator") == ["norm_d"]


@pytest.mark.parametrize("loss, message", [
    ({"hist_avg": {"player": "critic"}},
     "Invalid value for loss.hist_avg.player: expected one of generator, discriminator, both, got 'critic'"),
    ({"hist_avg": {"decay": 1.5}}, "Invalid value for loss.hist_avg.decay: expected 0.0 < decay < 1.0, got 1.5"),
    ({"hist_avg": {"strength": 2}}, "Unknown key loss.hist_avg.strength: valid keys are"),
    ({"hist_avg": {"layers": ["hidden_2"]}},
     "Invalid value for loss.hist_avg.layers: layer 'hidden_2' is not in the model; its layers are inputs, hidden_1, "
     "output"),
    ({"activity": {"layers": ["hidden_1"]}},
     "Invalid loss component for a GAN: loss.activity (activity) inserts layers into the network"),
    ({"generator": {"kind": "hist_avg"}}, "Invalid loss component name 'generator' for a GAN"),
    ({"hist_avg": {}, "hist_avg_generator": {"kind": "hist_avg", "player": "generator"}},
     "Invalid loss component name 'hist_avg_generator': an entry with player: both already uses it"),
])
def test_what_cannot_apply_is_one_error_naming_the_users_key(loss, message):
    with pytest.raises(ConfigError) as error:
        build(loss)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert "hist_avg_discriminator." not in str(error.value)


def test_player_on_a_model_without_players_is_an_unknown_key():
    message = r"Unknown key loss.hist_avg.player: valid keys are decay, distance, kind, layers, mode, weight"
    with pytest.raises(ConfigError, match=message):
        build_components({"hist_avg": {"player": "both"}})
    with pytest.raises(ConfigError, match=message):
        composed_config("model=mlp", "data=regression", "+loss.hist_avg.player=both")
