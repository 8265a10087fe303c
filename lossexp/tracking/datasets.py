"""The run's training and validation data as MLflow dataset inputs.

Each split is an ``mlflow.data`` dataset — NumPy for arrays in memory, TensorFlow for a stream —
with its name (``data.name``), a digest of the rows (so two runs on the same rows show the same
digest), a schema (dtype and shape of features and targets),
and a source: a code source whose tags are the data source and its config (seed, ``path``,
``n_samples``, …), which is what selects the rows. Logged with the context tag
``mlflow.data.context`` = ``training`` / ``validation``.

A stream's digest is lossexp's own, of its size, its element structure and its first
:data:`STREAM_ROWS` elements (at most :data:`DIGEST_BYTES` of them): the elements its checks read
before training anyway (:func:`lossexp.data.dataset.checked`), hashed as they are read, so that the
digest reads nothing more of the stream. MLflow's digest of a ``tf.data.Dataset`` reads the whole
stream twice, element by element in Python (features, then targets: 165 s at the start of a run on a
200,000-row stream, and a directory of images decoded twice more); lossexp's read the first 10,000
elements (as MLflow digests a table by its first 10,000 rows), before the first step: all 100 batches
of a 3,200-example ``PyDataset`` (11 without tracking), 12,524 rows of a 20,000-row generator with a
2,000-row validation set (520 without). Two runs on the same rows log one digest; rows that differ
within the first 256, or a size that differs, another — rows past them are told by the data config
the source records (seed, ``path``, ``n_samples``, …). A validation split cut from the end of a
stream is digested by the whole stream's first elements and where the cut falls, a validation set of
one's own by its own first elements; the schema is the training split's first element's, read once
(MLflow's read it for its schema and its digest, four times): the validation split's own first
element is reached only by reading every training element before it (a generator's Python, an
image's decoding).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence

from lossexp.data.dataset import CHECKED_ELEMENTS
from lossexp.data.digest import DIGEST_BYTES, rows_digest, update_rows

CONTEXT_TAG = "mlflow.data.context"
TRAINING, VALIDATION = "training", "validation"
#: an array's rows digested (MLflow's ``MAX_ROWS`` for a table): read in place, in memory already
DIGEST_ROWS = 10_000
#: a stream's elements digested: those its checks read before training (10,000 read all 100 batches of
#: a 3,200-example PyDataset before the first step, 11 without tracking)
STREAM_ROWS = CHECKED_ELEMENTS


def source(data_config: Mapping[str, Any]) -> Any:
    """A code source naming the generating module and the config that selects the rows."""
    from mlflow.data.code_dataset_source import CodeDatasetSource

    name = str(data_config.get("name"))
    return CodeDatasetSource(tags={"lossexp.data.source": name,
                                   **{f"data.{k}": str(v) for k, v in sorted(data_config.items())}})


def dataset(data_config: Mapping[str, Any], part: Any) -> Any:
    """An ``mlflow.data`` dataset of one split of arrays in memory (a :class:`lossexp.data.Part`),
    with lossexp's digest (:func:`array_digest`) in place of MLflow's."""
    from mlflow.data.numpy_dataset import NumpyDataset

    x, y = part.arrays[:2]  # the sample weights are not a column of the data
    if isinstance(x, list):  # several inputs in order: MLflow takes one array or a dict of them
        x = {f"input_{i}": inputs for i, inputs in enumerate(x)}
    return NumpyDataset(features=x, targets=y, source=source(data_config), name=str(data_config.get("name")),
                        digest=array_digest(x, y))


def array_digest(x: Any, y: Any) -> str:
    """An 8-hex-digit digest of arrays in memory: every array's dtype and shape, and its first
    :data:`DIGEST_ROWS` rows, at most :data:`DIGEST_BYTES` of them — the rule of a stream's digest
    (:func:`first_rows`). MLflow's own
    (``compute_numpy_digest``) copies each whole array (``flatten``: a second copy of a 1.2 GB split
    of images) to hash its first 10,000 *numbers*: part of one 64×64×3 image, 200 rows of a table
    of 50 columns, so splits that differ after them logged one digest."""
    import numpy as np

    digest = hashlib.md5()
    arrays = [value for _, value in sorted(x.items())] if isinstance(x, dict) else [x]
    arrays += [value for _, value in sorted(y.items())] if isinstance(y, dict) else [y]
    for array in arrays:
        array = np.asarray(array)  # a view of an array; a pandas frame's values
        digest.update(f"{array.dtype.str}{array.shape}|".encode())
        update_rows(digest, array, DIGEST_ROWS)
    return digest.hexdigest()[:8]


def stream_entities(data_config: Mapping[str, Any], parts: Sequence[Any]) -> List[Any]:
    """The MLflow dataset entities of a stream's splits (:class:`lossexp.data.Part`), each with its
    own digest and size; the schema is read once, from the first split's first element, and the
    first rows of the stream the splits were cut from once for both digests."""
    from mlflow.data.tensorflow_dataset import from_tensorflow
    from mlflow.entities import Dataset as DatasetEntity

    import tensorflow as tf

    def vectors(structure: Any) -> Any:  # one element as a batch of 1: MLflow's schema takes the first axis
        return tf.nest.map_structure(lambda t: t[None], structure)  # for the batch's (a (8, 8, 3) image was [-1, 8, 3])

    # the first element read once, in memory: MLflow reads a stream for its schema (features, then targets)
    # and, given no digest, for its own digest too
    x, y, *_ = next(iter(parts[0].stream.take(1)))
    described = from_tensorflow(tf.data.Dataset.from_tensors(vectors(x)), source=source(data_config),
                                targets=tf.data.Dataset.from_tensors(vectors(y)), name=str(data_config.get("name")),
                                digest="-").to_dict()
    read: Dict[int, str] = {}  # id of a stream → its first rows' digest, when not known already
    entities = []
    for part in parts:
        stream, offset = part.origin or (part.stream, 0)
        if part.first_rows is None and id(stream) not in read:
            read[id(stream)] = first_rows(stream)
        profile = json.dumps({"features_cardinality": part.size, "targets_cardinality": part.size})
        digest = stream_digest(stream, part.size, offset, part.first_rows or read[id(stream)])
        entities.append(DatasetEntity(name=described["name"], digest=digest, source_type=described["source_type"],
                                      source=described["source"], schema=described.get("schema"), profile=profile))
    return entities


def stream_digest(stream: Any, size: Optional[int], offset: int = 0, rows: Optional[str] = None) -> str:
    """An 8-hex-digit digest of a stream's size, element structure and first rows (:func:`first_rows`,
    or their digest ``rows`` when already read) — or, with ``offset``, of the ``size`` elements cut
    from it there."""
    header = f"{size}|{stream.element_spec}" + (f"|from {offset}" if offset else "")
    return hashlib.md5(f"{header}|{rows or first_rows(stream)}".encode()).hexdigest()[:8]


def first_rows(stream: Any) -> str:
    """The MD5 of a stream's first :data:`STREAM_ROWS` elements, at most :data:`DIGEST_BYTES` of them by
    their shapes, batched as its checks batch them (:func:`lossexp.data.dataset.first_elements`): the
    digest :func:`lossexp.data.dataset.checked` takes of the elements it reads, for a part whose first
    rows no check read (a source's own split's)."""
    from lossexp.data.dataset import first_elements
    from lossexp.data.streams import elements_within

    if int(stream.cardinality()) == 0:  # no batch to read
        return rows_digest((), STREAM_ROWS)
    return rows_digest(first_elements(stream, elements_within(stream, STREAM_ROWS, DIGEST_BYTES)), STREAM_ROWS)


def log_datasets(client: Any, run_id: str, data_config: Mapping[str, Any], train: Any, validation: Optional[Any]) -> None:
    """Log the splits (:class:`lossexp.data.Part`) as the run's dataset inputs (``validation`` may be None)."""
    from mlflow.entities import DatasetInput, InputTag

    contexts, parts = zip(*((context, part) for context, part in ((TRAINING, train), (VALIDATION, validation))
                            if part is not None))
    entities = stream_entities(data_config, parts) if train.arrays is None \
        else [dataset(data_config, part)._to_mlflow_entity() for part in parts]
    inputs = [DatasetInput(entity, tags=[InputTag(CONTEXT_TAG, context)]) for context, entity in zip(contexts, entities)]
    try:
        client.log_inputs(run_id, datasets=inputs)
    except Exception as exc:  # noqa: BLE001 — a race, retried once (see below); anything else re-raised
        # Jobs of a parallel sweep log the same dataset at once: MLflow's SQL store looks a dataset up,
        # then inserts it, so the slower job's insert breaks the (experiment, name, digest) unique key.
        # The dataset is in the store now: the retry finds it and only links it to this run.
        if "UNIQUE constraint" not in str(exc) and "duplicate key" not in str(exc):
            raise
        client.log_inputs(run_id, datasets=inputs)
