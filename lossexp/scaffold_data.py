"""The files ``lossexp new data NAME`` writes: a registered data source, its YAML and its test.

The source generates Gaussian blobs from a seed (nothing downloaded), as arrays. The test checks
what a run needs of any source: lossexp's own checks take its rows (lengths agree, no NaN/inf, the
task inferred from the targets), and the same options give the same rows in the same order — the last
``trainer.validation_split`` of them validate, so rows that move between calls leak into validation.
Formatted with ``str.format(name=…, cls=…)``: literal braces are doubled.
"""
from __future__ import annotations

CODE = '''"""The ``{name}`` data source (one registered function, one YAML: conf/data/{name}.yaml)."""
import numpy as np

import lossexp


@lossexp.register_data("{name}")
def {name}(n_samples: int = 1000, n_features: int = 8, n_classes: int = 3, seed: int = 0):
    """Gaussian blobs, one per class — replace with your data, and say here what the rows are and where
    they come from.

    Return ``(x, y)`` arrays (``(x, y, sample_weight)`` weighs examples), a finite ``tf.data.Dataset`` of
    ``(x, y)`` for data larger than memory, a ``keras.utils.PyDataset`` of batches, or
    ``{{"train": …, "validation": …}}`` (docs/own_problem.md, "A data source"). Integer labels make a
    classification, float targets a regression. The same options must give the same rows in the same
    order: the last ``trainer.validation_split`` of them validate. Read files relative to this module
    (``Path(__file__).parent``).

    Options: ``n_samples``; ``n_features``; ``n_classes``; ``seed``.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    x = centres[y] + rng.normal(size=(n_samples, n_features))
    return x.astype("float32"), y.astype("int64")
'''

YAML = '''# {cls}: describe the rows in one line (lossexp components lists it).
name: {name}
n_samples: 1000
n_features: 8
n_classes: 3
seed: 0
'''

TEST = '''"""{name}: lossexp's checks take its rows, and the same options give the same rows in the same order."""
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))  # the project's modules

from lossexp.data import as_dataset  # noqa: E402
from {name} import {name}  # noqa: E402


def options():
    """conf/data/{name}.yaml's options: what ``data={name}`` loads with."""
    config = OmegaConf.to_container(OmegaConf.load(PROJECT / "conf" / "data" / "{name}.yaml"))
    return {{key: value for key, value in config.items() if key != "name"}}


def test_lossexps_checks_take_the_rows():
    """As a run takes them: inputs and targets of one length, no NaN or inf, the task told by the targets."""
    dataset = as_dataset("{name}", {name}(**options()))
    assert dataset.task == "classification" and dataset.num_outputs == options()["n_classes"]
    assert dataset.x.shape == (options()["n_samples"], options()["n_features"])


def test_the_same_options_give_the_same_rows_in_the_same_order():
    first, again = {name}(**options()), {name}(**options())
    for part, part_again in zip(first, again):
        np.testing.assert_array_equal(part, part_again)
'''
