"""A fit inside the user's own long-lived process (a notebook kernel, a script that loops over
experiments) leaves that process's global state as it found it.

A run seeds Python's, NumPy's and Keras' global random generators from ``trainer.seed`` (so that
a config trains identically in any process) and may clear Keras' session (a network built by name)
or set its dtype policy. In the CLI's process nothing follows the run; in a notebook the user's own
code does: a random search drawing ``np.random.uniform`` between fits drew the same value after
every fit, and a global ``mixed_float16`` policy was gone after a fit of ``model="cnn"``.
:func:`users_random_state` puts them back. :func:`beside_users_hydra` lets lossexp compose its
config while the notebook holds a Hydra of its own (``hydra.initialize(...)`` called as a function),
where Hydra refused to initialise a second one.
"""
from __future__ import annotations

import contextlib
import random
import sys
from typing import Any, Dict, Iterator

import numpy as np

#: Keras' global attributes that a run sets and the user's code reads afterwards
#: (``keras.utils.set_random_seed``'s seed and generator, ``keras.config.set_dtype_policy``'s policy)
KERAS_ATTRIBUTES = ("global_random_seed", "global_seed_generator", "dtype_policy")


def _keras_state() -> Any:
    """Keras' global-state module, when Keras has been imported (None before: nothing to keep)."""
    if "keras" not in sys.modules:
        return None
    from keras.src.backend.common import global_state

    return global_state


@contextlib.contextmanager
def users_random_state() -> Iterator[None]:
    """Within the block, anything may seed the global generators or clear Keras' session; after it,
    Python's ``random``, NumPy's global generator and Keras' seed and dtype policy are the user's
    again, each continuing from where it was (TensorFlow's op-level global seed is not restored:
    TensorFlow has no way to read its counter back)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    state = _keras_state()
    keras_values: Dict[str, Any] = {name: state.get_global_attribute(name) for name in KERAS_ATTRIBUTES} \
        if state is not None else {name: None for name in KERAS_ATTRIBUTES}
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        state = _keras_state()
        if state is not None:
            for name, value in keras_values.items():
                state.set_global_attribute(name, value)


@contextlib.contextmanager
def beside_users_hydra() -> Iterator[None]:
    """Within the block Hydra's global instance is free for lossexp's own ``initialize_config_dir``;
    the user's (initialised or not) is back after it, as Hydra's own context managers restore theirs."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.singleton import Singleton

    users = Singleton._instances.pop(GlobalHydra, None)
    try:
        yield
    finally:
        if users is None:
            Singleton._instances.pop(GlobalHydra, None)
        else:
            Singleton._instances[GlobalHydra] = users
