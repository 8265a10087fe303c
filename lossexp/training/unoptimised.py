"""Monitoring functions run as traced, without TensorFlow's graph optimiser (Grappler).

Gradient diagnostics and weight drift are functions of their own, called every hundred steps or so.
Grappler rewrites a function's graph when it is first called: at a MobileNetV2 (260 weight
tensors) that was 3.2 s of the gradient diagnostics' first sample of 10.3 s (7.1 s without it) and
0.5 s of the drift's first measurement of 1.5 s, and the optimised graph ran no faster (35 ms a
sample either way). At dense MLPs of 0.1–7.6M parameters the unoptimised diagnostics run within
0–12 % of the optimised ones (1.8 against 1.5 ms at 0.1M, batch 32; 32.6 against 32.2 ms at 7.6M),
once every hundred steps; drift alike (14 ms at 7.6M; 5 December). The option is TensorFlow's
process-wide one, so it is set for the call alone and restored after: Keras' own step, instantiated
with the user's options, is unaffected.
"""
from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def unoptimised() -> Iterator[None]:
    """Grappler off for the functions first called (instantiated) inside the block."""
    import tensorflow as tf

    saved = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options(
            {**saved, "disable_meta_optimizer": saved.get("disable_meta_optimizer", False)})
