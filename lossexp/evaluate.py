"""``lossexp evaluate MODEL [overrides]``: reload a saved lossexp model and score it.

MODEL is a ``.keras`` file, an MLflow model directory (downloaded), a run's output directory, or a
``runs:/<run id>/model`` / ``models:/<model id>`` URI (see :mod:`lossexp.tracking.model_source`).

The model is loaded with every lossexp class registered (the training regimes' models, each loss
component, the shipped models' layers, the task losses) and the user project's modules imported,
in Keras' safe mode, and evaluated by its training regime with its own compiled loss and metrics
on the validation split of the configured data. The data is
that of the run that saved the model when its ``config.yaml`` lies beside it (as ``lossexp
train`` writes it; read as data by :mod:`lossexp.replay`), else the default config; overrides (``data=regression``,
``trainer.validation_split=0.5``, …) apply on top, composed and validated as for ``train``.

A file that is missing, corrupt, from an older lossexp or not a lossexp model, and data the
model cannot take, are :class:`~lossexp.errors.ConfigError`: one line, exit status 2.
"""
from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from lossexp import project
from lossexp.errors import ConfigError
from lossexp.keras_objects import register_keras_objects
from lossexp.overrides import override_value
from lossexp.replay import load_replayed_config

USAGE = "lossexp evaluate MODEL [overrides]"
#: the name under which the model file is reported in messages
MODEL_KEY = "MODEL"
#: the config ``lossexp train`` writes beside ``model.keras`` in the run's output directory
SAVED_CONFIG = "config.yaml"
EXPECTED = "a .keras file saved by lossexp train"


def _override(key: str, value: Any) -> str:
    """``key=value`` in Hydra's grammar: a mapping's keys bare (JSON's quoted keys are refused)."""
    return f"{key}={override_value(value)}"


def saved_overrides(model_path: Path, user_overrides: Sequence[str], saved_path: Optional[Path] = None) -> List[str]:
    """Overrides that select the saved run's model, data, task and validation split, less the keys the
    user sets (all of a group's keys when the user picks another option of the group). The run's
    config is ``saved_path``, by default the ``config.yaml`` beside the model."""
    saved_path = saved_path or model_path.parent / SAVED_CONFIG
    if not saved_path.is_file():
        return []
    source = f"{str(saved_path)!r} (the config of the run that saved {model_path.name})"
    try:
        text = saved_path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Invalid file {source}: {exc}; move it away to evaluate on the configured data") from None
    saved = load_replayed_config(text, source)
    user_keys = {override.split("=", 1)[0].lstrip("+~") for override in user_overrides}
    overrides = []
    for group in ("model", "data"):
        section = saved.get(group)
        if group in user_keys or not isinstance(section, dict) or "name" not in section:
            continue
        if section.get("source") == "python":  # given to lossexp.fit as objects: no config selects them again
            if group == "data":
                raise ConfigError(f"Invalid value for data: the run that saved {model_path.name} trained on data given "
                                  "in Python (lossexp.fit), which no config loads again: name the data to evaluate "
                                  "on, e.g. data=npz data.path=test.npz (or a data source of your project)")
            continue  # the network is the saved file itself
        overrides.append(f"{group}={section['name']}")
        overrides += [_override(f"{group}.{key}", value) for key, value in section.items()
                      if key != "name" and f"{group}.{key}" not in user_keys]
    task = saved.get("task") if isinstance(saved.get("task"), dict) else {}
    overrides += [_override(f"task.{key}", value) for key, value in task.items()
                  if value is not None and f"task.{key}" not in user_keys]
    trainer = saved.get("trainer") if isinstance(saved.get("trainer"), dict) else {}
    split = trainer.get("validation_split")
    if split is not None and "trainer.validation_split" not in user_keys:
        overrides.append(_override("trainer.validation_split", split))
    return overrides


def _bad_file(path: Path, reason: str) -> ConfigError:
    return ConfigError(f"Invalid value for {MODEL_KEY}: expected {EXPECTED}, got {str(path)!r} ({reason})")


def inspect_archive(path: Path) -> str:
    """The saved model's class name, read from the archive without Keras (so without TensorFlow).

    A ``.keras`` file is a zip of ``metadata.json`` (the Keras version), ``config.json`` (the
    model's classes) and the weights. A missing, corrupt, Keras 2 or foreign file fails here.
    """
    if not path.is_file():
        raise _bad_file(path, "no such file")
    if path.suffix != ".keras":
        raise _bad_file(path, "the name must end in .keras")
    try:
        with zipfile.ZipFile(path) as archive:
            missing = sorted({"metadata.json", "config.json"} - set(archive.namelist()))
            if not missing:
                metadata = json.loads(archive.read("metadata.json"))
                config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _bad_file(path, f"not a readable zip archive, corrupt or truncated: {exc}") from None
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise _bad_file(path, f"its JSON is corrupt: {exc}") from None
    if missing:
        raise _bad_file(path, f"no {' or '.join(missing)} in the archive: not a Keras 3 model file")
    version = str(metadata.get("keras_version", "unknown")) if isinstance(metadata, dict) else "unknown"
    if not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 3:
        raise _bad_file(path, f"saved by Keras {version}; lossexp reads files of Keras 3 — retrain the model")
    registered = config.get("registered_name") if isinstance(config, dict) else None
    from lossexp.training.trainer import for_saved_class, saved_classes

    if for_saved_class(registered) is None:
        project.load()  # a regime of the project's own saves its models under a class of its own
    if for_saved_class(registered) is None:
        raise _bad_file(path, f"a {registered or 'model of unknown class'}, not a lossexp model "
                              f"({' or '.join(saved_classes())})")
    return registered


def load_model(path: Path) -> Any:
    """The saved lossexp model at ``path``; a :class:`ConfigError` for anything Keras cannot load."""
    inspect_archive(path)
    import keras

    register_keras_objects()
    project.load()  # the user's custom layers and components
    try:
        return keras.saving.load_model(path, compile=True, safe_mode=True)
    except Exception as exc:  # a damaged or outdated file fails in many ways, all of them the file's fault
        # Keras nests the cause in the message: its last line that says something is the innermost error
        # (a list of the objects it was loading may follow it: "[<MyTerm name=my_term, built=False>]")
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if not line.startswith(("[<", "<"))), "")
        for advice in (" Full object config", ". Make sure custom classes"):  # Keras' advice to developers
            reason = reason.split(advice)[0]
        reason = reason.removeprefix("Exception encountered: ")[:300]
        from lossexp.models.serializable import missing_class

        missing = missing_class(str(exc))
        if missing:
            raise _bad_file(path, f"Keras cannot load it: {missing}") from None
        raise _bad_file(path, "Keras cannot load it; saved by another lossexp version, or before your project's "
                              f"code for it changed? {reason}") from None


@contextlib.contextmanager
def _named_as_given(given: str, path: Path) -> Iterator[None]:
    """A file error of a model given as a URI (``runs:/…``, ``models:/…``) names the URI, not the
    temporary directory it was downloaded into (``/tmp/lossexp-model-…/model/data/model.keras``)."""
    from lossexp.tracking.model_source import URI_SCHEMES

    try:
        yield
    except ConfigError as error:
        if not given.startswith(URI_SCHEMES) or repr(str(path)) not in str(error):
            raise
        raise ConfigError(str(error).replace(repr(str(path)), f"{given!r} (its model.keras)", 1)) from None


def evaluate(model_path: str, overrides: Sequence[str] = ()) -> Dict[str, float]:
    """Loss and metrics of the saved model on the configured data's validation split."""
    from lossexp.data import load
    from lossexp.precheck import compose_validated
    from lossexp.registry import register_config_nodes
    from lossexp.tracking.model_source import resolve, trained_with_project, with_full_run_id
    from lossexp.training.trainer import for_saved_class

    model_path = with_full_run_id(model_path, overrides)
    source = resolve(model_path, overrides)
    path = source.keras_path
    with _named_as_given(model_path, path):
        regime = for_saved_class(inspect_archive(path))
    if not regime.can_evaluate:
        raise _bad_file(path, f"a {regime.saved_class} model, which its training regime does not score on a "
                              "validation split (see the run's own metrics)")
    project.load()  # the project's parts the saved config names, with a YAML or without one
    register_config_nodes()
    try:
        config = compose_validated([*saved_overrides(path, overrides, source.config_path), *overrides])
    except ConfigError as error:  # a part of a project this directory does not see: say where it is
        raise project.located(error, trained_with_project(model_path, overrides)) from None
    trainer = regime(config)
    with _named_as_given(model_path, path):
        try:
            model = load_model(path)
        except ConfigError as error:  # its component's class, of a project this directory does not see
            raise project.located(error, trained_with_project(model_path, overrides)) from None
    return trainer.evaluate(model, trainer.prepare(load(config.data)))


def main(args: Sequence[str]) -> int:
    """``lossexp evaluate MODEL [overrides]``: print one ``name value`` line per metric."""
    if args and args[0] in ("-h", "--help"):
        print(f"usage: {USAGE}\n\n{__doc__.split(chr(10) * 2, 1)[1]}", end="")
        return 0
    if not args:
        raise ConfigError(f"Missing {MODEL_KEY}: usage: {USAGE}")
    if args[0].startswith("-") or "=" in args[0]:
        raise ConfigError(f"Invalid value for {MODEL_KEY}: expected a .keras file, model directory or URI first "
                          f"({USAGE}), got {args[0]!r}")
    model_path, overrides = args[0], list(args[1:])
    flags = [arg for arg in overrides if arg.startswith("-")]
    if flags:  # read as an override, "--uri" was "a quote is not closed"
        raise ConfigError(f"Unknown option {flags[0]} for lossexp evaluate: it takes {MODEL_KEY}, then overrides "
                          f"({USAGE}; the store is tracking.uri=URI)")
    results = evaluate(model_path, overrides)
    width = max(len(name) for name in results)
    for name, value in results.items():
        print(f"{name:<{width}}  {value:.6g}")
    return 0
