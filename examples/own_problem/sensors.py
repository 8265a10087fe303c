"""The project's data: the readings ``make_data.py`` wrote, as arrays."""
from pathlib import Path

import numpy as np

import lossexp


@lossexp.register_data("sensors", task="regression")
def sensors(path: str = "data/sensors.npz", n_samples: int = 2000):
    """Sensor readings (6 features) and the quantity to predict, from ``python make_data.py``.

    Options: ``path`` (relative to this project); ``n_samples`` (the first rows).
    """
    archive = np.load(Path(__file__).parent / path)
    return archive["readings"][:n_samples], archive["target"][:n_samples]
