"""A component's state updated from each replica's share of the batch: ``across_replicas`` combines what it
assigns, and a state the replicas updated apart is a warning line after the first epoch."""
from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from lossexp.errors import ConfigError
from lossexp.losses.base import LossComponent
from lossexp.training.replica_state import diverged_state


class Plain(LossComponent):
    def term(self, context):
        return ops.zeros(())


def test_across_replicas_leaves_one_devices_value_and_names_a_bad_reduction():
    component = Plain(name="plain")
    value = np.arange(6, dtype="float32").reshape(3, 2)
    for reduce in ("mean", "sum", "concat"):
        np.testing.assert_array_equal(ops.convert_to_numpy(component.across_replicas(value, reduce)), value)
    with pytest.raises(ConfigError, match=r"^Invalid value for loss.plain.across_replicas: expected one of mean, sum, "
                                          r"concat, got 'avg'$"):
        component.across_replicas(value, "avg")


def test_one_devices_state_is_never_diverged():
    component = Plain(name="plain")
    component.add_weight(name="ema", shape=(2,), initializer="ones", trainable=False)
    assert diverged_state([component]) == []


#: a project's EMA of a layer's feature means, combined over the replicas or not
PROJECT = {
    "pyproject.toml": '[tool.lossexp]\nmodules = ["ema"]\n',
    "conf/loss/feat_ema.yaml": "feat_ema: {weight: 0.1, combine: false}\n",
    "ema.py": (
        "from keras import ops\nimport lossexp\n\n\n"
        "@lossexp.register_component('feat_ema')\n"
        "class FeatureEMA(lossexp.LossComponent):\n"
        "    def __init__(self, weight=0.1, combine: bool = False, **kwargs):\n"
        "        super().__init__(weight=weight, **kwargs)\n"
        "        self.combine = combine\n\n"
        "    def attach(self, network):\n"
        "        self.ema = self.add_weight(name='ema', shape=(8,), initializer='zeros', trainable=False)\n\n"
        "    def outputs_needed(self):\n"
        "        return ['hidden_1']\n\n"
        "    def term(self, context):\n"
        "        mu = ops.mean(context.outputs['hidden_1'], axis=0)\n"
        "        ema = ops.convert_to_tensor(self.ema)\n"
        "        if context.training:\n"
        "            m = self.across_replicas(ops.stop_gradient(mu)) if self.combine else ops.stop_gradient(mu)\n"
        "            self.ema.assign(0.9 * ema + 0.1 * m)\n"
        "        return ops.sum(ops.square(mu - ema))\n"),
}


@pytest.mark.slow
@pytest.mark.integration  # two logical devices: a process of its own per run (make test-integration)
def test_a_state_the_replicas_updated_apart_is_a_warning_and_combined_is_none(run_cli, tmp_path):
    for name, text in PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for combine in (False, True):
        done = run_cli("train", "model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=80",
                       "loss=feat_ema", f"loss.feat_ema.combine={str(combine).lower()}", "trainer.epochs=1",
                       "trainer.batch_size=16", "trainer.steps_per_execution=1", "trainer.distribute=mirrored",
                       "trainer.logical_devices=2", "tracking.plots=false", "tracking.log_model=false")
        assert done.returncode == 0, done.stderr[-3000:]
        warned = [line for line in done.stderr.splitlines() if "differs between the 2 replicas" in line]
        assert len(warned) == (0 if combine else 1), done.stderr[-3000:]
        if not combine:
            assert warned[0].startswith("lossexp: warning: loss.feat_ema's state feat_ema/ema differs between the 2 "
                                        "replicas after the first epoch (max |Δ| ")
