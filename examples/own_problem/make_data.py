"""Writes data/sensors.npz: 2,000 readings of 6 sensors and the quantity to predict.

y = sin(x0)·x1 + 0.5·x2² − x3·x4 + 0.3·x5, with noise whose spread grows with |x0| (seeded), so
that a penalty on the spread of the predictions has something to act on.
"""
from pathlib import Path

import numpy as np


def generate(n: int = 2000, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    signal = np.sin(x[:, 0]) * x[:, 1] + 0.5 * x[:, 2] ** 2 - x[:, 3] * x[:, 4] + 0.3 * x[:, 5]
    noise = (0.1 + 0.2 * np.abs(x[:, 0])) * rng.normal(size=n)
    return x, (signal + noise).astype("float32")[:, None]


if __name__ == "__main__":
    x, y = generate()
    Path("data").mkdir(exist_ok=True)
    np.savez("data/sensors.npz", readings=x, target=y)
    print(f"wrote data/sensors.npz: readings {x.shape}, target {y.shape}")
