"""Keras layers the shipped models use, registered so that saved models reload."""
from __future__ import annotations

from typing import Any, Dict, Optional

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lossexp")
class Sampling(keras.layers.Layer):
    """``z = z_mean + exp(½·z_log_var)·ε``, ε ~ N(0, I), in training; ``z = z_mean`` otherwise.

    The noise comes from a seeded ``SeedGenerator``: its state is a variable, so a compiled step
    draws fresh noise every step, and it is saved with the layer (Keras saves no layer's seed
    state), so a reloaded model continues the same noise stream. In inference the layer is
    deterministic: ``predict`` and validation decode the mean.
    """

    def __init__(self, seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: Optional[bool] = None) -> Any:
        z_mean, z_log_var = inputs
        if not training:
            return z_mean
        epsilon = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}

    def save_own_variables(self, store: Any) -> None:
        store["seed_state"] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store: Any) -> None:
        self.seed_generator.state.assign(store["seed_state"])


@keras.saving.register_keras_serializable(package="lossexp")
class Maxout(keras.layers.Layer):
    """A maxout layer (Goodfellow et al. 2013): output ``j`` is ``max_k (x·W + b)[j·pieces + k]``.

    One affine map of ``units·pieces`` outputs (weights ``kernel``, ``bias``, as a Dense layer's),
    grouped into ``units`` consecutive groups of ``pieces``, each reduced by its maximum: the
    layer is its own non-linearity, so it takes no activation. PacGAN's discriminator
    (Lin et al. 2018) is three of these, 200 units of 5 pieces.
    """

    def __init__(self, units: int, pieces: int, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.pieces = pieces
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape: Any) -> None:
        width = self.units * self.pieces
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], width),
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(width,), initializer=self.bias_initializer)

    def call(self, inputs: Any) -> Any:
        affine = ops.matmul(inputs, self.kernel) + self.bias
        grouped = ops.reshape(affine, (*ops.shape(affine)[:-1], self.units, self.pieces))
        return ops.max(grouped, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "units": self.units, "pieces": self.pieces,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer)}


@keras.saving.register_keras_serializable(package="lossexp")
class Point(keras.layers.Layer):
    """A trainable point θ ∈ ℝⁿ, the layer's only weight (``theta``), returned for every input
    example: the output of a batch of B inputs is θ repeated B times, shape (B, n).

    The inputs only set the batch size: a model that *is* its parameters (a test function of
    multi-objective optimisation) has nothing to read from data.
    """

    def __init__(self, init: Any = (0.0, 0.0), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init = [float(value) for value in init]
        self.theta = self.add_weight(name="theta", shape=(len(self.init),),
                                     initializer=keras.initializers.Constant(self.init), trainable=True)

    def call(self, inputs: Any) -> Any:
        batch = ops.shape(inputs)[0]
        return ops.broadcast_to(ops.expand_dims(ops.cast(self.theta, self.compute_dtype), 0), (batch, len(self.init)))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], len(self.init))

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "init": self.init}
