"""A checkpoint's state file written one variable at a time.

``np.savez(path, *arrays)`` needs every array in host memory at once: the checkpoint at an epoch's end
copied the whole training state — the network, every optimizer slot, the components' state and the
three weight-drift references — to NumPy before writing the first byte. At ``keras.applications.ResNet50``
(23.6M parameters, Adam, ``hist_avg`` and drift: 967 variables and 646 drift arrays, 630 MB) that was
630 MB of host copies at every epoch's end, on top of the variables themselves. :func:`write_arrays`
writes the same file (an uncompressed ``.npz``, each entry ``<name>.npy`` as ``np.savez`` writes it, so
``np.load`` and :func:`lossexp.training.checkpoint.restore` read it unchanged) reading each variable
just before its entry is written, so at most one variable's copy is held.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Iterable, Tuple

import numpy as np


def host_array(value: Any) -> np.ndarray:
    """``value`` (a NumPy array, a Keras or TensorFlow variable or tensor) as a NumPy array."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy())
    return np.asarray(value)


def write_arrays(path: Path, entries: Iterable[Tuple[str, Any]]) -> None:
    """Write ``(name, value)`` entries to the ``.npz`` file ``path`` as ``np.savez(path, **{name: value})``
    would, each value read (:func:`host_array`) only when its entry is written."""
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in entries:
            with archive.open(f"{name}.npy", "w", force_zip64=True) as entry:  # as np.savez (numpy gh-10776)
                np.lib.format.write_array(entry, host_array(value), allow_pickle=False)
