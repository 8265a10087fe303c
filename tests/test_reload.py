"""Every loss component, the VAE and the GAN: a model trained through the product's own config →
build path and saved as ``.keras`` reloads in a NEW Python process, with only the imports docs/tracking.md
lists, into the same classes and gives the same predictions."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest


from conftest import composed_config, lossexp_env


MLP = ["model=mlp", "model.hidden_units=[8,4]", "data=regression", "data.n_samples=64"]
CASES = {
    # every component of the MLP in one network (one training and one reload instead of seven)
    "components": [*MLP, "loss=[hist_avg,activity,coef,cross_layer,closure,aux_output,regularizer]",
                   "loss.cross_layer.weight={value:0.5,trainable:true}", "loss.closure.fn=error_weighted",
                   "loss.regularizer.kernel.l2=0.01", "+loss.regularizer.activity={l1:0.01}"],
    "vae_kl": ["model=vae", "model.encoder_units=[16]", "model.decoder_units=[16]", "model.latent_dim=2",
               "model.seed=3",
               "data=digits", "data.n_samples=64", "loss.kl.weight={schedule:linear,start:0,end:1,steps:10}"],
    "gan_hist_avg": ["model=gan", "data=ring", "data.n_samples=64", "model.generator_units=[8]",
                     "model.discriminator_units=[8]", "loss=[hist_avg]"],
}

#: what docs/tracking.md tells a user to import before keras.saving.load_model: lossexp, and nothing of it
README_IMPORTS = """
import lossexp
import keras
"""

LOADER = README_IMPORTS + textwrap.dedent("""
    import json, sys
    import numpy as np
    out = {}
    for case in json.loads(sys.argv[1]):
        model = keras.saving.load_model(f"{case}.keras")
        inputs = np.load(f"{case}.npz")["inputs"]
        np.save(f"{case}.reloaded.npy", keras.ops.convert_to_numpy(model(inputs, training=False)))
        out[case] = sorted(f"{type(c).__name__}:{c.name}" for c in model.components)
    print(json.dumps(out))
""")


def train_and_save(case: str, overrides: list, directory) -> list:
    """Train one epoch through the product's path, save ``<case>.keras`` and its predictions."""
    import keras

    from lossexp.data import load
    from lossexp.training.trainer import for_config

    config = composed_config(*overrides, "tracking.enabled=false")
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    model = trainer.build(data)
    model.fit(**trainer.fit_arguments(data), epochs=1, verbose=0)
    if config.model.name == "gan":
        inputs = np.random.default_rng(0).standard_normal((8, model.latent_dim)).astype("float32")
    else:
        inputs = np.asarray(data.x[:8], dtype="float32")
    model.save(directory / f"{case}.keras")
    prediction = keras.ops.convert_to_numpy(model(inputs, training=False))
    np.savez(directory / f"{case}.npz", inputs=inputs, prediction=prediction)
    return sorted(f"{type(c).__name__}:{c.name}" for c in model.components)


@pytest.mark.slow
def test_every_component_vae_and_gan_reload_in_a_new_process_with_equal_predictions(tmp_path):
    expected = {case: train_and_save(case, overrides, tmp_path) for case, overrides in CASES.items()}
    assert len(expected["components"]) == 7 and all(expected.values())
    result = subprocess.run([sys.executable, "-c", LOADER, json.dumps(list(CASES))], cwd=tmp_path,
                            env=lossexp_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert reloaded == expected
    for case in CASES:
        want = np.load(tmp_path / f"{case}.npz")["prediction"]
        np.testing.assert_allclose(np.load(tmp_path / f"{case}.reloaded.npy"), want, rtol=1e-6, atol=1e-7,
                                   err_msg=case)
