"""The run's training and validation data as MLflow dataset inputs.

Each split is an ``mlflow.data`` NumPy dataset: its name (``data.name``), a digest of the arrays
(so two runs on the same rows show the same digest), a schema (dtype and shape of features and
targets), its row count, and a source saying where the rows come from. lossexp's data sets are
bundled or generated from a seed, never files, so the source is a code source whose tags are the
generating module and the data config (seed, ``n_samples``, …). Logged with the context tag
``mlflow.data.context`` = ``training`` / ``validation``.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import numpy as np

Arrays = Tuple[np.ndarray, np.ndarray]
CONTEXT_TAG = "mlflow.data.context"
TRAINING, VALIDATION = "training", "validation"


def source(data_config: Mapping[str, Any]) -> Any:
    """A code source naming the generating module and the config that selects the rows."""
    from mlflow.data.code_dataset_source import CodeDatasetSource

    name = str(data_config.get("name"))
    return CodeDatasetSource(tags={"lossexp.data.module": f"lossexp.data.{name}",
                                   **{f"data.{k}": str(v) for k, v in sorted(data_config.items())}})


def dataset(data_config: Mapping[str, Any], arrays: Arrays) -> Any:
    """An ``mlflow.data`` dataset of ``(inputs, targets)``."""
    import mlflow.data

    x, y = arrays
    return mlflow.data.from_numpy(x, targets=y, source=source(data_config), name=str(data_config.get("name")))


def log_datasets(client: Any, run_id: str, data_config: Mapping[str, Any], train: Arrays,
                 validation: Optional[Arrays]) -> None:
    """Log the splits as the run's dataset inputs (``validation`` may be None: no split)."""
    from mlflow.entities import DatasetInput, InputTag

    inputs = [DatasetInput(dataset(data_config, arrays)._to_mlflow_entity(), tags=[InputTag(CONTEXT_TAG, context)])
              for context, arrays in ((TRAINING, train), (VALIDATION, validation)) if arrays is not None]
    client.log_inputs(run_id, datasets=inputs)
