"""The monitoring functions' Grappler switch: off inside the block, the user's options restored after."""
from __future__ import annotations

import pytest

from lossexp.training.unoptimised import unoptimised


def test_grappler_is_off_inside_and_the_users_options_are_restored_after():
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"constant_folding": False})  # a user's own choice
    try:
        with unoptimised():
            assert tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"] is True
        after = tf.config.optimizer.get_experimental_options()
        assert after["constant_folding"] is False and after.get("disable_meta_optimizer", False) is False
        with pytest.raises(RuntimeError), unoptimised():
            raise RuntimeError("a failing sample")
        assert tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False) is False
    finally:
        tf.config.optimizer.set_experimental_options({**before, "constant_folding": before.get("constant_folding", True)})
