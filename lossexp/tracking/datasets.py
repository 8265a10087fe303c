"""The run's training and validation data as MLflow dataset inputs.

Each split is an ``mlflow.data`` dataset — NumPy for arrays in memory, TensorFlow for a stream —
with its name (``data.name``), a digest of the rows (so two runs on the same rows show the same
digest), a schema (dtype and shape of features and targets),
and a source: a code source whose tags are the data source and its config (seed, ``path``,
``n_samples``, …), which is what selects the rows. Logged with the context tag
``mlflow.data.context`` = ``training`` / ``validation``.

A stream's digest is lossexp's own, of its size, its element structure and its first
:data:`DIGEST_ROWS` elements — as MLflow digests a table by its first 10,000 rows. MLflow's
digest of a ``tf.data.Dataset`` reads the whole stream twice, element by element in Python
(features, then targets): 165 s at the start of a run on a 200,000-row stream, and a directory of
images decoded twice more, before the first step.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping, Optional

CONTEXT_TAG = "mlflow.data.context"
TRAINING, VALIDATION = "training", "validation"
#: a stream's elements read for its digest (MLflow's ``MAX_ROWS`` for a table)
DIGEST_ROWS = 10_000


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
                               targets=targets, name=name, digest=stream_digest(part.stream, part.size))
    x, y = part.arrays[:2]  # the sample weights are not a column of the data
    if isinstance(x, list):  # several inputs in order: MLflow takes one array or a dict of them
        x = {f"input_{i}": inputs for i, inputs in enumerate(x)}
    return mlflow.data.from_numpy(x, targets=y, source=source(data_config), name=name)


def stream_digest(stream: Any, size: Optional[int]) -> str:
    """An 8-hex-digit digest of a stream's size, element structure and first :data:`DIGEST_ROWS`
    elements (read in batches; sequences of varying length padded, as training batches them)."""
    import numpy as np
    import tensorflow as tf

    from lossexp.data.dataset import batches

    digest = hashlib.md5(f"{size}|{stream.element_spec}".encode())
    for batch in batches(stream.take(DIGEST_ROWS), 1000).as_numpy_iterator():
        for array in tf.nest.flatten(batch):
            array = np.asarray(array)
            digest.update(b"".join(array.ravel()) if array.dtype == object else np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:8]


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
