"""The run's training and validation data as MLflow dataset inputs.

Each split is an ``mlflow.data`` dataset — NumPy for arrays in memory, TensorFlow for a stream —
with its name (``data.name``), a digest of the rows (so two runs on the same rows show the same
digest; MLflow digests a stream's first rows), a schema (dtype and shape of features and targets),
and a source: a code source whose tags are the data source and its config (seed, ``path``,
``n_samples``, …), which is what selects the rows. Logged with the context tag
``mlflow.data.context`` = ``training`` / ``validation``.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

CONTEXT_TAG = "mlflow.data.context"
TRAINING, VALIDATION = "training", "validation"


def source(data_config: Mapping[str, Any]) -> Any:
    """A code source naming the generating module and the config that selects the rows."""
    from mlflow.data.code_dataset_source import CodeDatasetSource

    name = str(data_config.get("name"))
    return CodeDatasetSource(tags={"lossexp.data.source": name,
                                   **{f"data.{k}": str(v) for k, v in sorted(data_config.items())}})


def dataset(data_config: Mapping[str, Any], part: Any) -> Any:
    """An ``mlflow.data`` dataset of one split (a :class:`lossexp.data.Part`)."""
    import mlflow.data
    from mlflow.data.tensorflow_dataset import from_tensorflow

    name = str(data_config.get("name"))
    if part.arrays is None:  # one label per element as a vector of 1: MLflow infers no schema of scalars
        targets = part.stream.map(lambda x, y, *weight: y if y.shape.rank else y[None])
        return from_tensorflow(part.stream.map(lambda x, y, *weight: x), source=source(data_config),
                               targets=targets, name=name)
    x, y = part.arrays[:2]  # the sample weights are not a column of the data
    if isinstance(x, list):  # several inputs in order: MLflow takes one array or a dict of them
        x = {f"input_{i}": inputs for i, inputs in enumerate(x)}
    return mlflow.data.from_numpy(x, targets=y, source=source(data_config), name=name)


def log_datasets(client: Any, run_id: str, data_config: Mapping[str, Any], train: Any, validation: Optional[Any]) -> None:
    """Log the splits (:class:`lossexp.data.Part`) as the run's dataset inputs (``validation`` may be None)."""
    from mlflow.entities import DatasetInput, InputTag

    inputs = [DatasetInput(dataset(data_config, part)._to_mlflow_entity(), tags=[InputTag(CONTEXT_TAG, context)])
              for context, part in ((TRAINING, train), (VALIDATION, validation)) if part is not None]
    try:
        client.log_inputs(run_id, datasets=inputs)
    except Exception as exc:  # noqa: BLE001 — a race, retried once (see below); anything else re-raised
        # Jobs of a parallel sweep log the same dataset at once: MLflow's SQL store looks a dataset up,
        # then inserts it, so the slower job's insert breaks the (experiment, name, digest) unique key.
        # The dataset is in the store now: the retry finds it and only links it to this run.
        if "UNIQUE constraint" not in str(exc) and "duplicate key" not in str(exc):
            raise
        client.log_inputs(run_id, datasets=inputs)
