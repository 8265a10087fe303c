"""Where and at what precision a run computes: one device, or every local device under
``tf.distribute.MirroredStrategy``; float32, or a Keras mixed-precision policy.

``trainer.logical_devices: N`` splits the CPU into N logical devices (how Keras' own distribution
tests run on one machine); it must happen before TensorFlow starts its runtime, so a process that
already computed something cannot change it (one line says so). ``trainer.distribute: mirrored``
builds and compiles the model inside the strategy's scope, which Keras then uses for ``fit``.
``trainer.precision`` sets the global dtype policy for the run and restores it after.

Under a strategy every replica computes its batch's loss and the gradients are summed across
replicas, so the loss a replica differentiates is the total divided by :func:`replicas` — Keras
does this for its compiled loss, the composed models for every component term. What must be the
same on every replica — a weighting method's view of the losses and of the tasks' gradients — is
all-reduced first (:func:`all_replicas`).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

from lossexp.errors import ConfigError, invalid_value

STRATEGIES = ("mirrored",)
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def replicas() -> int:
    """Replicas computing one step together (1 without a strategy)."""
    import tensorflow as tf

    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def all_replicas(value: Any, mean: bool = False) -> Any:
    """``value`` (a tensor or a list of them) summed — or averaged — over the replicas of this step;
    unchanged on one device, and outside the replicas (a computation on the whole batch, as the
    gradient diagnostics run). For what the whole global batch must agree on: a weighting method's
    losses and the tasks' gradients."""
    if replicas() == 1:
        return value
    import tensorflow as tf

    if tf.distribute.in_cross_replica_context():
        return value

    op = tf.distribute.ReduceOp.MEAN if mean else tf.distribute.ReduceOp.SUM
    return tf.distribute.get_replica_context().all_reduce(op, value)


def gathered(value: Any) -> Any:
    """The replicas' ``value`` (a tensor whose first axis is examples) concatenated along that axis, in
    replica order: the global batch's rows; unchanged on one device and outside the replicas."""
    if replicas() == 1:
        return value
    import tensorflow as tf

    if tf.distribute.in_cross_replica_context():
        return value
    return tf.distribute.get_replica_context().all_gather(value, axis=0)


def split_cpu(count: Optional[int]) -> None:
    """Make ``count`` logical CPU devices (before TensorFlow's runtime starts); None leaves it alone."""
    if count is None:
        return
    import tensorflow as tf

    [cpu] = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise invalid_value("trainer.logical_devices", "a setting made before TensorFlow ran anything in this "
                            "process (a fresh lossexp train, not a reused sweep worker)", count) from None


@contextlib.contextmanager
def placement(trainer: Any, network: Any = None) -> Iterator[Any]:
    """Within the block: the strategy scope and dtype policy ``trainer`` asks for (the devices are
    split first, by :func:`split_cpu`). A ``network`` given already built (from Python) holds
    variables of the scope it was built in: under ``mirrored`` it must have been built in a
    ``MirroredStrategy``'s scope, whose strategy then trains it (Keras cannot update a variable of one
    device from several replicas); one built in a strategy's scope needs ``mirrored``."""
    import keras
    import tensorflow as tf

    own = strategy_of(network) if network is not None else None
    if trainer.distribute == "mirrored" and network is not None and own is None:
        raise ConfigError("Invalid value for trainer.distribute: expected, for mirrored, a network built in a "
                          "tf.distribute.MirroredStrategy's scope (strategy = tf.distribute.MirroredStrategy(); "
                          f"with strategy.scope(): build it), got {network.name} built outside one")
    if trainer.distribute is None and own is not None:
        raise ConfigError(f"Invalid value for trainer.distribute: expected mirrored for {network.name}, built in a "
                          f"{type(own).__name__}'s scope, got null")
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(trainer.precision)
    try:
        if trainer.distribute == "mirrored":
            strategy = own or tf.distribute.MirroredStrategy()
            if strategy.num_replicas_in_sync < 2:
                raise ConfigError("Invalid value for trainer.distribute: expected more than one device for "
                                  "mirrored, got 1 (set trainer.logical_devices=2 to split the CPU)")
            with strategy.scope():
                yield strategy
        else:
            yield tf.distribute.get_strategy()
    finally:
        keras.config.set_dtype_policy(policy)


def strategy_of(network: Any) -> Any:
    """The distribution strategy in whose scope ``network``'s variables were created (None: none)."""
    for variable in network.weights:
        strategy = getattr(getattr(variable, "value", variable), "distribute_strategy", None)
        if strategy is not None:
            return strategy
    return None


def computes_in(network: Any) -> set:
    """The compute dtypes of the network's layers that hold weights (``{'float16'}`` for a network built
    under ``mixed_float16``)."""
    return {layer.compute_dtype for layer in network._flatten_layers() if layer.weights}


def loss_scaled(network: Any, optimizer: Any) -> Any:
    """``optimizer``, in Keras' ``LossScaleOptimizer`` when the network computes in float16. Keras'
    ``compile`` wraps it only when the compiled model's own policy is ``mixed_float16``; the composed
    model's is the one in force when lossexp composes it (``trainer.precision``), which a network you
    built under ``keras.mixed_precision.set_global_policy('mixed_float16')`` does not follow — without
    loss scaling its float16 gradients underflow."""
    import keras

    if "float16" not in computes_in(network) or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(keras.optimizers.get(optimizer))

