"""A fit in the user's own long-lived process leaves its global state as it found it: the random
streams the user draws from between fits, Keras' dtype policy, and a Hydra the notebook initialised."""
from __future__ import annotations

import random

import numpy as np
import pytest

import lossexp
from lossexp import session


def _draws():
    return random.random(), float(np.random.rand())


def test_the_global_random_streams_continue_after_a_block_that_seeds_them_and_clears_keras():
    import keras
    from keras.src.backend.common import global_state

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(7)
        seed_generator = global_state.get_global_attribute("global_seed_generator")
        first = _draws()
        expected = _draws()  # what the user's stream gives next, untouched
        keras.utils.set_random_seed(7)
        assert _draws() == first
        with session.users_random_state():
            keras.utils.set_random_seed(0)
            keras.backend.clear_session()  # a fit of a model by name
            keras.config.set_dtype_policy("float32")
        assert _draws() == expected
        assert global_state.get_global_attribute("global_random_seed") == 7
        assert global_state.get_global_attribute("global_seed_generator") is seed_generator
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")


def test_lossexps_hydra_composes_beside_one_the_notebook_initialised(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    (tmp_path / "mine.yaml").write_text("a: 1\n")
    GlobalHydra.instance().clear()
    initialize_config_dir(config_dir=str(tmp_path), version_base="1.3")  # a notebook's call, not a `with`
    try:
        with session.beside_users_hydra(), \
                initialize_config_dir(config_dir=str(lossexp.CONF_DIR), version_base="1.3", job_name="lossexp_api"):
            assert compose("config", overrides=["trainer.epochs=3"]).trainer.epochs == 3
        assert compose("mine").a == 1
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.slow
def test_a_random_search_by_hand_draws_new_values_between_fits_in_a_notebook_with_its_own_hydra(tmp_path,
                                                                                                monkeypatch):
    import keras
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    x = np.random.default_rng(0).random((64, 3)).astype("float32")
    (tmp_path / "mine.yaml").write_text("a: 1\n")
    GlobalHydra.instance().clear()
    initialize_config_dir(config_dir=str(tmp_path), version_base="1.3")
    try:
        np.random.seed(123)
        untouched = list(np.random.uniform(-4, -2, size=3))
        np.random.seed(123)
        drawn = []
        for _ in range(2):
            drawn.append(np.random.uniform(-4, -2))
            inputs = keras.Input((3,), name="inputs")
            network = keras.Model(inputs, keras.layers.Dense(1, name="output")(inputs), name="search")
            lossexp.fit(network, (x, x.sum(axis=1, keepdims=True)), optimizer={"name": "adam",
                                                                               "learning_rate": 10 ** drawn[-1]},
                        trainer={"epochs": 1, "verbose": 0, "batch_size": 64},
                        tracking={"log_model": False, "plots": False, "drift": False, "gradients": False})
        drawn.append(np.random.uniform(-4, -2))
        assert drawn == untouched  # each trial its own learning rate: the fits did not reseed NumPy
        assert compose("mine").a == 1
    finally:
        GlobalHydra.instance().clear()
