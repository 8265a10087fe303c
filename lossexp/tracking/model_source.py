"""``lossexp evaluate``'s MODEL argument → a local ``.keras`` file and the config of its run.

MODEL may be:

* a ``.keras`` file (``outputs/runs/<date>/<time>/model.keras``): its run's ``config.yaml`` is
  the one beside it, if any;
* an MLflow model directory, e.g. one downloaded with ``mlflow artifacts download -u
  runs:/ID/model``: the Keras flavor's file named in its ``MLmodel``, and the ``config.yaml``
  lossexp saves in it;
* a run's output directory (holding ``model.keras``);
* a model URI, ``runs:/<run id>/model`` or ``models:/<model id>`` (``models:/<name>/<version>``
  for a registered model): downloaded from the store into a temporary directory, then read as
  above. The store is ``tracking.uri=…`` among the overrides, ``$MLFLOW_TRACKING_URI``, or
  ``outputs/mlflow.db`` under the current directory — as ``lossexp train`` resolves it.

Whatever cannot be resolved is a :class:`~lossexp.errors.ConfigError` naming MODEL. No TensorFlow.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import yaml

from lossexp.errors import ConfigError

URI_SCHEMES = ("runs:/", "models:/")
MLMODEL = "MLmodel"
CONFIG_FILE = "config.yaml"
KERAS_FILE = "model.keras"
KEY = "MODEL"


@dataclass
class ModelSource:
    """Where the model and its run's config are on this machine."""

    keras_path: Path
    config_path: Optional[Path]


def _invalid(argument: str, reason: str) -> ConfigError:
    return ConfigError(f"Invalid value for {KEY}: expected a .keras file, an MLflow model directory or a "
                       f"runs:/ or models:/ URI saved by lossexp train, got {argument!r} ({reason})")


def _beside(path: Path) -> Optional[Path]:
    config = path / CONFIG_FILE
    return config if config.is_file() else None


def from_model_directory(directory: Path, argument: str) -> ModelSource:
    """An MLflow model directory (``MLmodel`` + Keras flavor) or a run's output directory."""
    mlmodel = directory / MLMODEL
    if not mlmodel.is_file():
        if (directory / KERAS_FILE).is_file():
            return ModelSource(directory / KERAS_FILE, _beside(directory))
        raise _invalid(argument, f"a directory with neither {MLMODEL} nor {KERAS_FILE}")
    try:
        flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors") or {}
    except (OSError, yaml.YAMLError) as exc:
        raise _invalid(argument, f"its {MLMODEL} is unreadable: {type(exc).__name__}") from None
    keras = flavors.get("keras")
    if not isinstance(keras, dict):
        raise _invalid(argument, f"its {MLMODEL} has no keras flavor (flavors: {', '.join(flavors) or 'none'})")
    if keras.get("save_exported_model"):
        raise _invalid(argument, "an exported SavedModel, not a .keras model")
    keras_path = directory / str(keras.get("data", "data")) / KERAS_FILE
    if not keras_path.is_file():
        raise _invalid(argument, f"{keras_path.relative_to(directory)} is missing")
    return ModelSource(keras_path, _beside(directory))


def tracking_uri(overrides: Sequence[str]) -> str:
    """The store a URI is read from: ``tracking.uri=`` in ``overrides``, else as ``lossexp train``."""
    from lossexp.tracking import store

    configured = next((o.split("=", 1)[1] for o in overrides if o.startswith("tracking.uri=")), None)
    return store.resolve_uri(configured or None, Path.cwd())


def download(uri: str, overrides: Sequence[str]) -> Path:
    """Download model ``uri`` into a temporary directory (removed at exit); returns the directory."""
    from mlflow.exceptions import MlflowException

    from lossexp.tracking import store

    store_uri = tracking_uri(overrides)
    if store.is_local_sqlite(store_uri) and not store.sqlite_path(store_uri).exists():
        raise _invalid(uri, f"no store at {store_uri}; pass tracking.uri=… or run from the project directory")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")  # the setter exports it: restored after
    mlflow.set_tracking_uri(store_uri)  # models:/ and runs:/ are resolved through the fluent API's store
    scratch = Path(tempfile.mkdtemp(prefix="lossexp-model-"))
    atexit.register(shutil.rmtree, scratch, True)
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(scratch),
                                                        tracking_uri=store_uri))
    except (MlflowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _invalid(uri, f"not found in {store_uri}: {unsaved_reason(uri, store_uri) or first[:200]}") from None
    finally:
        mlflow.set_tracking_uri(previous)


def unsaved_reason(uri: str, store_uri: str) -> Optional[str]:
    """Why a ``runs:/`` URI's run has no model, when its training could not save it (the tag
    :data:`~lossexp.tracking.logged_model.NOT_LOGGED_TAG`); None otherwise."""
    import mlflow

    from lossexp.tracking.logged_model import NOT_LOGGED_TAG

    if not uri.startswith("runs:/"):
        return None
    try:
        tags = mlflow.MlflowClient(store_uri).get_run(uri[len("runs:/"):].split("/")[0]).data.tags
    except Exception:  # no such run, a server that refuses: the download's own message says enough
        return None
    return f"the run saved no model ({tags[NOT_LOGGED_TAG][:200]})" if NOT_LOGGED_TAG in tags else None


def with_full_run_id(argument: str, overrides: Sequence[str] = ()) -> str:
    """``runs:/<id>/model`` with the whole id of the run a short one starts (the 8 characters ``lossexp runs``
    shows, which ``train --from-run`` takes too); any other MODEL as given."""
    if not argument.startswith("runs:/"):
        return argument
    from lossexp.tracking.from_run import full_run_id

    run_id, slash, rest = argument[len("runs:/"):].partition("/")
    return f"runs:/{full_run_id(run_id, overrides)}{slash}{rest}"


def resolve(argument: str, overrides: Sequence[str] = ()) -> ModelSource:
    """The local ``.keras`` file and ``config.yaml`` for MODEL (see the module docstring)."""
    if argument.startswith(URI_SCHEMES):
        return from_model_directory(download(argument, overrides), argument)
    path = Path(argument)
    if path.is_dir():
        return from_model_directory(path, argument)
    return ModelSource(path, _beside(path.parent))


def trained_with_project(argument: str, overrides: Sequence[str] = ()) -> Optional[str]:
    """The directory of the project the run of a ``runs:/`` or ``models:/`` MODEL was trained with (its
    tag :data:`lossexp.project.TAG`); None for a file, a run without one, or a store that does not say."""
    import mlflow

    from lossexp.project import TAG

    try:
        client = mlflow.MlflowClient(tracking_uri(overrides))
        if argument.startswith("runs:/"):
            run_id = argument[len("runs:/"):].split("/")[0]
        elif argument.startswith("models:/"):
            run_id = client.get_logged_model(argument[len("models:/"):].split("/")[0]).source_run_id
        else:
            return None
        return client.get_run(run_id).data.tags.get(TAG)
    except Exception:  # noqa: BLE001 — a registered model's name, a server that refuses: no hint, the error stands
        return None
