"""A config read back from a store is data (lossexp/replay.py): nothing resolved, interpolations and
unknown sections refused with one line, ``hydra``/``defaults`` dropped, destinations the replaying user's."""
from __future__ import annotations

import pytest

from crafted_runs import composed_config, dump
from lossexp.errors import ConfigError
from lossexp.replay import load_replayed_config

SOURCE = "the config.yaml of run 'abc'"


def test_a_logged_config_replays_as_it_was_less_where_it_went() -> None:
    logged = composed_config()
    logged["tracking"].update(uri="http://elsewhere:5000", experiment="theirs", run_name="theirs",
                              parent_run_id="f" * 32, sweep_keys=["loss"], plots=False)
    replayed = load_replayed_config(dump({**logged, "hydra": {"run": {"dir": "/x"}}, "defaults": ["_self_"]}), SOURCE)
    assert set(replayed) == {"model", "data", "loss", "optimizer", "task", "trainer", "tracking", "objective",
                             "weighting", "ablation"}
    assert replayed["tracking"] == {**logged["tracking"], "uri": None, "experiment": "lossexp", "run_name": None,
                                    "parent_run_id": None, "sweep_keys": []}  # plots=False: what it records stays
    assert {key: replayed[key] for key in ("model", "data", "loss", "trainer")} == {
        key: logged[key] for key in ("model", "data", "loss", "trainer")}


@pytest.mark.parametrize("text, message", [
    ("model:\n  name: mlp\n  hidden_units: [8, '${oc.env:HOME}']\n",
     "Invalid value for model.hidden_units[1] in the config.yaml of run 'abc': expected a plain value (a replayed "
     "config is data: no ${…} interpolation is resolved), got '${oc.env:HOME}'"),
    ("data: {name: '\\${escaped}'}\n", "Invalid value for data.name in"),
    ("model: ???\n", "OmegaConf's missing-value marker ??? is not accepted"),
    ("model: {name: mlp}\nshell: rm -rf ~\n",
     "Unknown key shell in the config.yaml of run 'abc': valid keys are ablation, data, loss, model, objective, "
     "optimizer, task, tracking, trainer, weighting"),
    ("a: &x [1, 2]\nb: *x\n", "Invalid file the config.yaml of run 'abc': expected lossexp's config YAML, got a YAML "
                              "alias (*name), which lossexp never writes"),
    ("- model\n", "expected a mapping with the sections ablation, data, loss, model, objective, optimizer, task, tracking, "
                  "trainer, weighting, "
                  "got a list"),
    ("", "got nothing"),
    ("trainer: 1\n", "Invalid value for trainer in the config.yaml of run 'abc': expected a mapping of its keys, got '1'"),
    ("model: [\n", "got ParserError: expected the node content, but found '<stream end>' (line 2, column 1)"),
    ("model: 1\nmodel: 2\n", "got ConstructorError: found duplicate key model"),
    ("x" * 1_000_001, "1,000,001 characters"),
])
def test_what_is_refused_is_one_line_naming_the_source_and_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_replayed_config(text, SOURCE)
    assert message in str(info.value) and "\n" not in str(info.value)
