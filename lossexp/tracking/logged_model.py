"""The trained model as an MLflow model: a LoggedModel linked to the run, named ``model``.

One MLflow model directory serves two kinds of reader:

* **Keras flavor** (``data/model.keras``): the composed model — network, loss components, task
  loss — for ``mlflow.keras.load_model(uri)`` after ``import lossexp`` (which registers lossexp's
  Keras classes when Keras loads) and for ``lossexp evaluate runs:/ID/model``.
* **python_function flavor** (``serving/``): the bare network exported as a TensorFlow SavedModel
  (``save_exported_model``), so ``mlflow.pyfunc.load_model(uri).predict(x)`` needs TensorFlow and
  MLflow only — no lossexp import, no lossexp class. It takes several inputs as a dict by input
  name and returns several outputs as one array, their columns named in the model's metadata
  (``lossexp.python_function.outputs``; see :func:`served`). The network can hold lossexp layers (a
  loss tap, the VAE's sampling layer); exporting traces them into the graph, where logging the
  ``.keras`` network or shipping lossexp's code (``code_paths``) would need lossexp's classes, or
  a copy of them, at load time. ``serving/`` is itself a Keras-flavor MLflow model, which MLflow's
  own pyfunc loader (``mlflow.keras._load_pyfunc``) reads when the pyfunc flavor's ``data`` points
  there.

The model carries its input/output signature, an input example (a few rows of the validation
inputs; for a GAN's generator, a few noise vectors) and the run's ``config.yaml``, so a downloaded
model directory is self-contained
(``lossexp evaluate DIR``). Its requirements are pinned to what is installed (MLflow would
otherwise infer them by loading the model in a subprocess, which cannot load lossexp's classes).
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import sys
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

NAME = "model"
SERVING_DIR = "serving"
CONFIG_FILE = "config.yaml"
EXAMPLE_ROWS = 5
NOT_LOGGED_TAG = "lossexp.model_not_logged"
NOT_LOGGED_ARTIFACT = "error/model_not_logged.txt"


def example_inputs(network: Any, data_inputs: Any) -> Any:
    """:data:`EXAMPLE_ROWS` inputs for ``network``: rows of the data (in the data's dtypes, which the
    served model takes and casts: int64 token ids for an int32 ``keras.Input``), or seeded
    standard-normal noise when the network does not take the data (a GAN's generator takes latent
    noise). One array, or a dict of named inputs for a network of several (a list of inputs is
    named by its ``keras.Input`` names, which Keras matches too: MLflow's signatures name every
    input of several)."""
    import keras

    from lossexp.data.structure import shapes
    from lossexp.training.rewire import symbolic_inputs

    rows = keras.tree.map_structure(lambda inputs: as_str(np.asarray(inputs[:EXAMPLE_ROWS])), data_inputs)
    try:
        specs = symbolic_inputs(network)
    except (AttributeError, ValueError):  # a subclassed network has no symbolic inputs: it takes the data
        return {f"input_{i}": r for i, r in enumerate(rows)} if isinstance(rows, list) else rows
    if not _takes(shapes(specs), shapes(data_inputs)):
        noise = np.random.default_rng(0)
        rows = keras.tree.map_structure(  # a dimension the network leaves open (None): one
            lambda spec: noise.standard_normal((EXAMPLE_ROWS, *(d or 1 for d in spec.shape[1:]))).astype(spec.dtype),
            specs)
    return {spec.name: r for spec, r in zip(specs, rows)} if isinstance(rows, list) else rows


def is_text(rows: Any) -> bool:
    """Whether an array holds text (``np.array(list_of_str)``, or a stream's bytes as objects)."""
    return np.asarray(rows).dtype.kind in "OSU"


def as_str(rows: np.ndarray) -> np.ndarray:
    """Text rows as Python strings (a stream's are bytes, which an MLflow input example cannot hold as
    JSON); other arrays as they are."""
    if not is_text(rows):
        return rows
    return np.vectorize(lambda t: t.decode() if isinstance(t, bytes) else str(t), otypes=[object])(rows)


def fed(example: Any) -> Any:
    """The example as the network is fed it: text as string tensors (Keras takes no NumPy array of
    objects or strings of more than one dimension: ``Invalid dtype: object``), the rest as it is."""
    import keras
    import tensorflow as tf

    return keras.tree.map_structure(lambda rows: tf.constant(rows.tolist(), tf.string) if is_text(rows) else rows,
                                    example)


def _takes(wanted: Any, given: Any) -> bool:
    """Whether inputs of the example shapes ``given`` fit the shapes ``wanted`` (a network's inputs,
    ``None`` where it takes any length: a sequence's steps, an image's size), in the same structure."""
    if isinstance(wanted, dict):
        return isinstance(given, dict) and set(wanted) == set(given) and all(_takes(wanted[k], given[k])
                                                                               for k in wanted)
    if isinstance(wanted, list):
        return isinstance(given, list) and len(wanted) == len(given) and all(map(_takes, wanted, given))
    return (not isinstance(given, (dict, list)) and len(wanted) == len(given)
            and all(w is None or w == g for w, g in zip(wanted, given)))


def requirements() -> List[str]:
    """Pinned requirements of both flavors: MLflow, Keras and the installed TensorFlow wheel."""
    pins = []
    for candidates in (("mlflow", "mlflow-skinny"), ("keras",), ("tensorflow-cpu", "tensorflow")):
        for distribution in candidates:
            try:
                pins.append(f"{distribution}=={metadata.version(distribution)}")
                break
            except metadata.PackageNotFoundError:
                continue
    return pins


def save_serving(serving: Any, path: Path, signature: Any, example: Any) -> None:
    """``serving`` as a TensorFlow SavedModel in MLflow's Keras-flavor layout for exported models
    (``MLmodel`` with ``save_exported_model: true``, the SavedModel in ``data/model``), which
    ``mlflow.keras``'s pyfunc loader reads and calls as ``serve(inputs)``.

    Written here rather than by ``mlflow.keras.save_model(save_exported_model=True)``, whose ``serve``
    takes each input as its own argument, which that loader never passes: its endpoint takes the
    inputs as the example holds them (one array, or a dict of named inputs), so a network of
    several inputs is served too.
    """
    import keras
    import tensorflow as tf
    from mlflow.models import Model

    opened = served_shapes(serving, example)
    def spec(shape: Any, rows: Any) -> Any:
        return tf.TensorSpec(shape, tf.string if is_text(rows) else np.asarray(rows).dtype)

    specs = ({name: spec(opened[name], rows) for name, rows in example.items()}
             if isinstance(example, dict) else spec(opened, example))
    archive = keras.export.ExportArchive()
    archive.track(serving)  # its lookup tables too (a TextVectorization's), which the endpoint alone misses
    _save_each_weight_once(archive)
    archive.add_endpoint(name="serve", fn=lambda inputs: served(serving(_as_taken(serving, inputs), training=False)),
                         input_signature=[specs])
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' export prints its endpoints
        archive.write_out(str(path / "data" / "model"))
    description = Model(signature=signature)
    description.add_flavor("keras", data="data", keras_version=keras.__version__,
                           keras_backend=keras.backend.backend(), save_exported_model=True)
    description.save(str(path / "MLmodel"))


def _save_each_weight_once(archive: Any) -> None:
    """Make the archive's ``variables`` lists (what ``track`` filled, and what the revived SavedModel
    offers as ``variables``) hold each Keras variable's TensorFlow variable instead of the Keras
    variable.

    Keras' ``ExportArchive`` checkpoints the TensorFlow variables its endpoints read
    (``_all_variables``) and, separately, the Keras variables ``track`` listed — two checkpoint
    objects for each weight, so ``serving/`` held every weight twice (``model.export`` does the
    same). Listing the TensorFlow variables themselves makes the two lists name the same objects,
    which the checkpoint writes once. ``_tf_trackable`` is private to Keras: the tests
    (``tests/tracking/test_logged_model.py``) check the bytes and the served predictions of a dense
    network, a lookup layer's, a batch normalisation's and one of several inputs and outputs.
    """
    import keras

    trackable = archive._tf_trackable
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        setattr(trackable, name, [variable.value if isinstance(variable, keras.Variable) else variable
                                  for variable in getattr(trackable, name)])


def served_shapes(network: Any, example: Any) -> Any:
    """The shapes the served model takes: the example's (one array, or a dict by input name), open
    (None) in the batch and wherever the network's input is — a sequence's steps, an image's size —,
    so that it serves what the network takes, not only the example's length."""
    from lossexp.training.rewire import symbolic_inputs

    try:
        specs = symbolic_inputs(network)
    except (AttributeError, ValueError):  # a subclassed network: the example's shapes
        specs = None
    if isinstance(specs, list):
        specs = {spec.name: spec for spec in specs}

    def opened(rows: Any, spec: Any) -> tuple:
        shape = tuple(np.shape(rows)[1:])
        if spec is not None and len(spec.shape) == len(shape) + 1:
            shape = tuple(None if open_ is None else d for open_, d in zip(spec.shape[1:], shape))
        return (None, *shape)

    if isinstance(example, dict):
        return {name: opened(rows, specs.get(name) if isinstance(specs, dict) else None)
                for name, rows in example.items()}
    return opened(example, None if isinstance(specs, dict) else specs)


def _open_signature(signature: Any, shapes: Any) -> Any:
    """``signature`` (inferred from the example) with its inputs' shapes :func:`served_shapes`: -1
    where any length is taken, so MLflow's schema check lets other lengths through."""
    from mlflow.types.schema import Schema, TensorSpec

    def shape_of(spec: Any) -> tuple:
        shape = shapes[spec.name] if isinstance(shapes, dict) else shapes
        return tuple(-1 if d is None else d for d in shape)

    if signature.inputs is None or not signature.inputs.is_tensor_spec():
        return signature
    signature.inputs = Schema([TensorSpec(spec.type, shape_of(spec), spec.name) for spec in signature.inputs.inputs])
    return signature


def _as_taken(network: Any, inputs: Any) -> Any:
    """``inputs`` (one tensor, or a dict by input name) cast to the dtypes of the network's inputs."""
    import keras

    from lossexp.training.rewire import symbolic_inputs

    try:
        specs = symbolic_inputs(network)
    except (AttributeError, ValueError):  # a subclassed network: takes what it is given
        return inputs
    if isinstance(specs, list):
        specs = {spec.name: spec for spec in specs}
    return keras.tree.map_structure(lambda spec, tensor: tensor if spec.dtype == "string" else
                                    keras.ops.cast(tensor, spec.dtype), specs, inputs)


def served(outputs: Any) -> Any:
    """The network's outputs as the python_function flavor returns them: one output as it is;
    several (a dict or list) as one array, each flattened per example and concatenated along the
    last axis in ``keras.tree`` order (a dict's names sorted) — ``mlflow.keras``'s pyfunc wrapper
    converts one tensor to NumPy, and a dict of tensors to an unusable object array."""
    import keras

    parts = keras.tree.flatten(outputs)
    if len(parts) == 1:
        return parts[0]
    return keras.ops.concatenate([keras.ops.reshape(p, (keras.ops.shape(p)[0], -1)) for p in parts], axis=-1)


def output_columns(predictions: Any) -> Optional[str]:
    """Which columns of :func:`served`'s array each of several outputs fills (``cls: 0–1, reg: 2``),
    None for one output."""
    import keras

    if not isinstance(predictions, (dict, list, tuple)):
        return None
    names = sorted(predictions) if isinstance(predictions, dict) else range(len(predictions))
    widths = [int(np.prod(np.shape(part)[1:])) for part in keras.tree.flatten(predictions)]
    starts = np.cumsum([0, *widths])
    return ", ".join(f"{name}: {start}" + (f"–{start + width - 1}" if width > 1 else "")
                     for name, start, width in zip(names, starts, widths))


def save_trained(model: Any, path: Path) -> None:
    """Save the trained ``model`` as ``.keras`` at ``path`` (the run's ``model.keras``, which the MLflow
    model's Keras flavor is a link or copy of), its optimizers' slots left out when its class loads
    without them (:func:`optimizer_slots_left_out`)."""
    with optimizer_slots_left_out(model):
        model.save(path)


@contextlib.contextmanager
def optimizer_slots_left_out(model: Any) -> Iterator[None]:
    """While saving, each optimizer of ``model`` writes only the variables it has before it is built —
    its step count (which scheduled weights and learning rates follow) and learning rate — not the
    slots it builds for the weights (Adam's two moments: two copies of the network's weights).

    No reader of a run's saved model needs them: ``lossexp evaluate`` and ``mlflow.keras.load_model``
    predict and score, ``--resume`` restores its own checkpoint (``checkpoint/state-*.npz``),
    ``model=keras_file`` loads without compiling. Only for a class that can say so in its compile
    config (``saves_optimizer_slots``, :class:`~lossexp.training.composed_model.ComposedModel`), so
    that its reload builds no slots for the file to fill (Keras' own builds them and warns that the
    file holds fewer); a model whose slots cannot be told apart (an optimizer that creates other
    variables before it is built) is saved whole. ``model.save`` outside keeps Keras' whole state.
    """
    import keras

    from lossexp.training.checkpoint import optimizers

    if not hasattr(type(model), "saves_optimizer_slots"):
        yield
        return
    found = optimizers(model)
    found += [inner for o in found if isinstance(inner := getattr(o, "inner_optimizer", None),
                                                     keras.optimizers.Optimizer)]  # a loss-scaled one's
    kept = {id(o): _unbuilt_variables(o) for o in found}
    if any(variables is None for variables in kept.values()):
        yield
        return
    for optimizer in found:
        optimizer.save_own_variables = functools.partial(_save_variables, kept[id(optimizer)])
    object.__setattr__(model, "saves_optimizer_slots", False)
    try:
        yield
    finally:
        object.__delattr__(model, "saves_optimizer_slots")  # the class's True again
        for optimizer in found:
            del optimizer.save_own_variables  # Keras' own method again


def _unbuilt_variables(optimizer: Any) -> Optional[List[Any]]:
    """``optimizer``'s variables that an optimizer of its config has before it is built, in that
    optimizer's order (what its ``load_own_variables`` reads back by position); None when they are not
    all found by path."""
    fresh = type(optimizer).from_config(optimizer.get_config())
    by_path = {variable.path: variable for variable in optimizer.variables}
    kept = [by_path.get(variable.path) for variable in fresh.variables]
    return None if any(variable is None for variable in kept) else kept


def _save_variables(variables: List[Any], store: Any) -> None:
    """An optimizer's ``save_own_variables`` for ``variables`` only (Keras' stores all, by position)."""
    for i, variable in enumerate(variables):
        store[str(i)] = variable.numpy()


class _WrittenFile:
    """The trained model's ``.keras`` file as ``mlflow.keras.save_model`` takes a model: its ``save``,
    the one call it makes on the model, links (or, across file systems, copies) the file the run
    already wrote into the MLflow model directory — the same bytes, not serialised a second time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, destination: str, **options: Any) -> None:
        try:
            os.link(self.path, destination)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(self.path, destination)


class _Flavor:
    """What ``mlflow.models.Model.log`` calls to write the model directory (see the module docstring)."""

    __name__ = "keras"

    @staticmethod
    def save_model(path: str, mlflow_model: Any, saved_file: Path, serving: Any, signature: Any, input_example: Any,
                   config_path: Optional[Path], pip_requirements: List[str], validate_serving_input: bool,
                   columns: Optional[str]) -> None:
        import mlflow.keras

        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)  # mlflow.keras writes the input example before making it
        mlflow.keras.save_model(_WrittenFile(saved_file), path, mlflow_model=mlflow_model, signature=signature,
                                input_example=input_example, pip_requirements=pip_requirements)
        save_serving(serving, root / SERVING_DIR, signature, input_example)
        mlflow_model.flavors["python_function"]["data"] = SERVING_DIR
        mlflow_model.metadata = {**(mlflow_model.metadata or {}), "lossexp.keras_flavor": "import lossexp first",
                                 "lossexp.python_function": f"{SERVING_DIR}/: the network as a TF SavedModel",
                                 **({"lossexp.python_function.outputs": columns} if columns else {})}
        mlflow_model.save(str(root / "MLmodel"))
        if config_path is not None:
            shutil.copyfile(config_path, root / CONFIG_FILE)


def log_model(client: Any, uri: str, run_id: str, experiment_id: str, saved_file: Path, serving: Any,
              data_inputs: Any, config_path: Optional[Path], step: int,
              tags: Optional[Dict[str, str]] = None) -> str:
    """Log the model the run saved at ``saved_file`` (:func:`save_trained`) as the run's MLflow model
    ``model`` — its Keras flavor that file, linked or copied, not the model serialised again —,
    ``serving`` (the network its training regime serves:
    :meth:`lossexp.training.trainer.Trainer.serving_network`) as its python_function flavor; returns
    the LoggedModel's id.

    What ``mlflow.models.Model.log`` does for a LoggedModel, through ``client``: the model directory
    written by :class:`_Flavor`, its artifacts uploaded, the run's output at ``step`` and the run's
    metrics at ``step`` linked to the model (:func:`link_metrics_at_step`). ``Model.log`` found those
    metrics by reading the whole history of every metric of the run: 9.5 s of a 100-epoch run's end
    (163,000 points; 2.5 s at 49,000), growing with the run; now one read of the run's latest values."""
    import tempfile

    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model, infer_signature

    example = example_inputs(serving, data_inputs)
    predictions = serving.predict(fed(example), verbose=0)
    signature = _open_signature(infer_signature(example, np.asarray(served(predictions))),  # what pyfunc returns
                                served_shapes(serving, example))
    params = {key: str(value) for key, value in client.get_run(run_id).data.params.items()}
    logged = client.create_logged_model(experiment_id, name=NAME, source_run_id=run_id, params=params,
                                        tags=tags, model_type="keras")
    try:
        with tempfile.TemporaryDirectory() as directory:
            mlflow_model = Model(artifact_path=logged.artifact_location, run_id=run_id, model_uuid=logged.model_id,
                                 model_id=logged.model_id)
            _Flavor.save_model(str(Path(directory) / NAME), mlflow_model, saved_file=saved_file, serving=serving,
                               signature=signature, input_example=example, config_path=config_path,
                               pip_requirements=requirements(), validate_serving_input=False,
                               columns=output_columns(predictions))
            client.log_model_artifacts(logged.model_id, str(Path(directory) / NAME))
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=step)])
        link_metrics_at_step(client, run_id, logged.model_id, step)
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return logged.model_id


def link_metrics_at_step(client: Any, run_id: str, model_id: str, step: int) -> None:
    """Link the run's metrics recorded at ``step`` (the last training step) to the LoggedModel
    ``model_id``, as ``Model.log(step=…)`` does: each metric whose latest point is at ``step`` is
    logged again with the model's id and its own timestamp (so the run's history gains no point)."""
    from mlflow.entities import Metric

    latest = client.get_run(run_id).to_proto().data.metrics  # each key's latest point, with its timestamp
    linked = [Metric(metric.key, metric.value, metric.timestamp, metric.step, run_id=run_id, model_id=model_id)
              for metric in latest if metric.step == step]
    if linked:
        client.log_batch(run_id, metrics=linked)


def _why(exc: BaseException) -> str:
    """Why Keras could not save a network, in one line."""
    from lossexp.project import one_line

    return f"{type(exc).__name__}: {one_line(str(exc), 300)}"


def _advice(exc: BaseException) -> str:
    """What to do about a network Keras cannot save: where the project's code raised, else get_config()."""
    from lossexp.project import user_frame

    frame = user_frame(exc)
    return (f"It failed in your code at {frame.filename}:{frame.lineno} (in {frame.name})" if frame is not None
            else "Give your classes a get_config() (see Keras' serialization guide)")


def warn_if_unsaveable(model: Any) -> Optional[str]:
    """Say before training, in one warning line, when Keras will not be able to save the network
    (its config does not serialise): a long run should not find out at its end. Returns the reason it
    gave (None: none), so that the run's end does not say it again."""
    import keras

    try:
        keras.saving.serialize_keras_object(model)
    except Exception as exc:
        print(f"lossexp: warning: Keras cannot save this network ({_why(exc)}): the run will train and record "
              f"its metrics without the model (tag {NOT_LOGGED_TAG}). {_advice(exc)} or set "
              "tracking.log_model=false", file=sys.stderr)
        return _why(exc)
    return None


@contextlib.contextmanager
def unsaved_model_is_a_warning(tracked: Any, saved_file: Path, warned: Optional[str] = None) -> Iterator[None]:
    """A trained network Keras cannot save (a class of the user's whose constructor takes values
    Keras cannot serialise and that has no ``get_config``; a regime's ``serving_network`` that raises)
    costs the run its model, not the run: one warning line (naming the file and line when the project's
    own code raised; none when :func:`warn_if_unsaveable` said the same, ``warned``, before training),
    the tag :data:`NOT_LOGGED_TAG` saying why, the traceback as an artifact; the metrics and plots stay
    and the run ends FINISHED (training itself went well)."""
    from lossexp.tracking import store

    try:
        yield
    except Exception as exc:
        reason = _why(exc)
        saved_file.unlink(missing_ok=True)
        if reason != warned:
            print(f"lossexp: warning: the trained model was not saved ({reason}); the run and its metrics are "
                  f"recorded. {_advice(exc)} or set tracking.log_model=false", file=sys.stderr)
        if tracked.run_id:
            store.set_tag(tracked.client, tracked.run_id, NOT_LOGGED_TAG, reason)
            tracked.client.log_text(tracked.run_id, traceback.format_exc(), NOT_LOGGED_ARTIFACT)
