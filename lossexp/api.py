"""The Python API, for notebooks: the same machinery as ``lossexp train``, on your own objects.

::

    import lossexp
    history, run_id = lossexp.fit(my_keras_model, (x, y), loss=["hist_avg", MyTerm(weight=0.1)],
                                  trainer={"epochs": 3}, optimizer={"name": "adamw", "weight_decay": 1e-4})
    model = lossexp.compose(my_keras_model, ["activity", ("hist_avg", {"weight": 0.1})])  # fit it yourself

:func:`fit` composes the config with Hydra from lossexp's ``conf/`` (and your project's), exactly
as the CLI does — each keyword section (``trainer=``, ``optimizer=``, ``weighting=``, ``task=``,
``tracking=``, ``objective=``; ``optimizer`` and ``weighting`` also a name alone) and each Hydra
override string in ``overrides`` is applied on top and validated
— then trains and records one MLflow run through :func:`lossexp.train.execute`. ``model`` and
``data`` are either registered names or your objects: a ``keras.Model``; ``(x, y)`` or ``(x, y,
sample_weight)`` arrays (``y`` a list in the order of a network's several outputs, or a dict by
their names), a ``tf.data.Dataset`` of such elements (``y`` a tuple or a dict), a
``keras.utils.PyDataset`` of such batches
or a :class:`lossexp.Dataset` (:mod:`lossexp.data.dataset` says what each may hold); a validation
set of one's own is ``validation_data=`` in the same form (or ``data={"train": …, "validation": …}``).
Batches given — a stream tf.data batched, a ``PyDataset`` — are trained in their size unless
``trainer`` gives ``batch_size``, as Keras' ``fit`` trains them.
"""
from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from lossexp.errors import ConfigError, Terminated, invalid_value
from lossexp.overrides import override_value, plain

#: a loss entry: a registered name, ``(name, options)``, or a component instance (``loss=`` may also be a
#: dict of options by name: :func:`loss_entries`)
LossEntry = Union[str, Tuple[str, Mapping[str, Any]], Any]
SECTIONS = ("trainer", "optimizer", "weighting", "task", "tracking", "objective")


class FitResult(NamedTuple):
    """What :func:`fit` returns: Keras' history (metric name → values per epoch) and the run id."""

    history: Dict[str, List[float]]
    run_id: Optional[str]


#: the sections that choose a part by name (a group of ``conf/``): a name, or a mapping with ``name`` and its options
CHOSEN = ("optimizer", "weighting")


def _section_overrides(section: str, values: Any) -> List[str]:
    values = plain(values)  # a NumPy number of a notebook's sweep is the number it holds
    if section in CHOSEN and isinstance(values, str):
        return [f"{section}={values}"]
    _check_plain(section, values)
    if not isinstance(values, Mapping):
        raise invalid_value(section, "a mapping of option to value", values)
    overrides = [f"{section}={values['name']}"] if section in CHOSEN and "name" in values else []
    return overrides + [f"{section}.{key}={override_value(value)}" for key, value in values.items() if key != "name"]


def _check_plain(key: str, value: Any) -> None:
    """A section holds what a config can: names, numbers, booleans, lists and mappings of them. A Keras
    object (a loss, a metric, an optimizer, a schedule) is refused in one line saying where it goes."""
    if isinstance(value, Mapping):
        for name, item in value.items():
            _check_plain(f"{key}.{name}", item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(key, item)
    elif value is not None and not isinstance(value, (str, bool, int, float)):
        raise ConfigError(f"Invalid value for {key}: expected what a config holds (a name, number, list or mapping; "
                          f"e.g. 'sparse_categorical_crossentropy', {{'name': 'adam', 'learning_rate': 0.001}}), got "
                          f"a {type(value).__name__} object; to train with Keras objects, compose the model and "
                          "compile it yourself: model = lossexp.compose(network, loss=[...]); "
                          "model.compile(optimizer=..., loss=..., metrics=...); model.fit(...)"
                          + (_REGISTER_AND_NAME.format(part="loss" if key.startswith("task.loss") else "metric",
                                                     name=_object_name(value))
                             if key.split(".")[:2] in (["task", "loss"], ["task", "metrics"]) else ""))


#: a loss or metric of one's own, given to ``task`` as an object: chosen by name once registered
_REGISTER_AND_NAME = ("; or, a {part} of your own, register it with @keras.saving.register_keras_serializable() "
                      "in a module of your project and give its name: {name!r}")


def _object_name(value: Any) -> str:
    """The name ``value`` (a class instance or a function) is registered under by default."""
    return getattr(value, "__name__", None) or type(value).__name__


def loss_entries(loss: Union[str, LossEntry, Iterable[LossEntry]]) -> List[LossEntry]:
    """The entries of ``loss`` as a list: a list as it is; one entry alone — a name, ``(name, options)``,
    an instance — as a list of it; a string joined by ``+`` as the command line's ``loss=`` is
    (``"hist_avg+activity"``; ``"none"``: no component); a dict of options by name, as a config's
    ``loss:`` holds them (``{"hist_avg": {"weight": 0.1}, "activity": {}}``; None: the defaults), as
    ``(name, options)`` pairs, in its order; in a list, such a dict stands for its pairs."""
    from lossexp.losses.base import LossComponent

    if isinstance(loss, str):
        return [name for name in loss.split("+") if name and name != "none"]
    if isinstance(loss, Mapping):
        return _options_by_name(loss)
    if isinstance(loss, LossComponent) or (isinstance(loss, tuple) and len(loss) == 2 and isinstance(loss[0], str)
                                           and isinstance(loss[1], Mapping)):
        return [loss]
    if not isinstance(loss, (list, tuple)):  # a Keras loss as Keras' compile(loss=…) takes it, a class, a number
        raise not_an_entry(loss)
    return [pair for entry in loss for pair in (_options_by_name(entry) if isinstance(entry, Mapping) else [entry])]


def _options_by_name(loss: Mapping[Any, Any]) -> List[LossEntry]:
    """``{name: options}`` (options None: the component's defaults) as ``(name, options)`` pairs."""
    for name, options in loss.items():
        if not isinstance(name, str) or not (options is None or isinstance(options, Mapping)):
            given = repr(options) if isinstance(options, (str, int, float)) else f"a {type(options).__name__}"
            raise ConfigError("Invalid value for loss: expected a dict of each component's options by its name "
                              f"({{'hist_avg': {{'weight': 0.1}}}}), got {name!r}: {given}")
    return [(name, dict(options or {})) for name, options in loss.items()]


def not_an_entry(entry: Any) -> ConfigError:
    """One line for a ``loss`` entry that is none of its forms, saying where the thing given goes."""
    from lossexp.losses.base import LossComponent

    if isinstance(entry, type) and issubclass(entry, LossComponent):
        hint = f" (give an instance, {entry.__name__}(name=..., weight=...), or its registered name)"
    elif callable(entry):
        hint = (" (a Keras loss is the task loss: task={'loss': 'huber'} by name; a Keras object, compose and "
                "compile yourself: lossexp.compose(network, loss=[...]).compile(loss=...))")
    else:
        hint = ""
    got = (repr(entry) if entry is None or isinstance(entry, (str, int, float))
           else f"the class {entry.__name__}" if isinstance(entry, type) else f"a {type(entry).__name__}")
    return ConfigError("Invalid value for loss: expected component names, (name, options) pairs, a dict of options "
                       f"by name or LossComponent instances{hint}, got {got}")


def _split_loss(loss: Iterable[LossEntry]) -> Tuple[List[str], List[Any], Dict[str, Dict[str, Any]]]:
    """(names to compose, component instances, options given with names)."""
    from lossexp.losses.base import LossComponent

    names, instances, options = [], [], {}
    for entry in loss:
        if isinstance(entry, LossComponent):
            if not hasattr(type(entry), "registry_name"):
                from lossexp.registry import name_suggestion

                suggested = name_suggestion(entry.name)  # the name it was given: MyTerm(name="my_term"), not "myterm"
                raise ConfigError(f"Invalid loss component {entry.name!r}: its class {type(entry).__name__} is not "
                                  f"registered; decorate it with @lossexp.register_component({suggested!r}) (the "
                                  "name under which runs record it and saved models reload it)")
            instances.append(entry)
        elif isinstance(entry, str):
            names.append(entry)
        elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
            names.append(entry[0])
            options[entry[0]] = plain(dict(entry[1]))
        else:
            raise not_an_entry(entry)
    return names, instances, options


def components(loss: Union[str, LossEntry, Iterable[LossEntry]], trainer_keys: Sequence[str] = ()) -> List[Any]:
    """Component instances for a list of names, ``(name, options)`` pairs and instances, in order."""
    from lossexp.losses.entries import build_components

    entries: List[Any] = []
    for entry in loss_entries(loss):
        names, instances, options = _split_loss([entry])
        entries += instances or build_components({names[0]: options.get(names[0], {})}, trainer_keys)
    return entries


def by_output_name(data: Any, network: Any) -> Any:
    """``(x, [y1, y2, …])`` and ``(x, y, [w1, w2, …])`` for a network of several outputs, as Keras takes
    them: the targets, and sample weights given one array per output, as dicts by the network's output
    names, in order (anything else unchanged); a ``tf.data`` stream's or a ``PyDataset``'s tuples of
    targets and weights alike. A subclassed network not built yet has no names: a list of arrays of one
    value per example each is named by position, as its outputs are once built
    (:func:`lossexp.models.outputs.positional_names`)."""
    from lossexp.data.batches import is_py_dataset
    from lossexp.models.outputs import output_names, positional_names

    if hasattr(data, "element_spec"):  # a tf.data stream
        return _named_stream(data, network)
    if is_py_dataset(data):
        return _named_batches(data, network)
    if not (isinstance(data, tuple) and len(data) in (2, 3)):
        return data
    import numpy as np

    names = output_names(network)
    examples = _examples(data[0])

    def named(value: Any) -> Any:
        if not (isinstance(value, (list, tuple)) and len(value) >= 2 and all(np.ndim(v) >= 1 for v in value)):
            return value
        if names:
            return dict(zip(names, value)) if len(value) == len(names) else value
        per_output = network is not None and examples is not None and len(value) != examples \
            and all(len(v) == examples for v in value)
        return dict(zip(positional_names(len(value)), value)) if per_output else value

    return (data[0], named(data[1]), *(named(w) for w in data[2:]))


def _named_stream(stream: Any, network: Any) -> Any:
    """A ``tf.data`` stream of ``(x, (y1, y2, …))`` elements (and per-output weights ``(w1, w2, …)``)
    for a network of as many outputs, its targets and weights as dicts by the network's output names
    (:func:`by_output_name`); anything else unchanged."""
    from lossexp.models.outputs import output_names

    spec = stream.element_spec
    if not (isinstance(spec, tuple) and len(spec) in (2, 3) and isinstance(spec[1], tuple) and len(spec[1]) >= 2):
        return stream
    names = _names_of_targets(output_names(network), network, len(spec[1]))
    if len(names) != len(spec[1]):
        return stream

    def named(x: Any, y: Any, *weights: Any) -> Any:
        per_output = [dict(zip(names, w)) if isinstance(w, tuple) and len(w) == len(names) else w for w in weights]
        return (x, dict(zip(names, y)), *per_output)

    return stream.map(named)


def _named_batches(batches: Any, network: Any) -> Any:
    """A ``keras.utils.PyDataset`` whose batches hold ``(x, (y1, y2, …))`` (and per-output weights) for a
    network of as many outputs, read with its targets and weights as dicts by the network's output
    names (:func:`by_output_name`); a batch of anything else is read unchanged. The loader keeps its
    class's name, which messages about its batches give."""
    import keras

    from lossexp.models.outputs import output_names

    names = output_names(network)

    class Named(keras.utils.PyDataset):
        def __len__(self) -> int:
            return len(batches)

        def __getitem__(self, index: int) -> Any:
            batch = batches[index]
            if not (isinstance(batch, tuple) and len(batch) in (2, 3)):
                return batch
            count = len(batch[1]) if isinstance(batch[1], (tuple, list)) else 0
            named = _names_of_targets(names, network, count)
            if count < 2 or len(named) != count:
                return batch
            return (batch[0], *(dict(zip(named, part)) if isinstance(part, (tuple, list)) and len(part) == count
                                else part for part in batch[1:]))

    Named.__name__ = Named.__qualname__ = type(batches).__name__
    return Named()


def _names_of_targets(names: List[str], network: Any, count: int) -> List[str]:
    """The names to give ``count`` targets of ``network``: its output names ``names``, else — a subclassed
    network not built yet has none — positional ones, as its outputs are named once built
    (:func:`lossexp.models.outputs.positional_names`); none without a network."""
    from lossexp.models.outputs import positional_names

    return names or (positional_names(count) if network is not None else [])


def _examples(x: Any) -> Optional[int]:
    """How many examples the inputs ``x`` hold: the length of their first array (None if unknown)."""
    import numpy as np

    while isinstance(x, (list, tuple, dict)) and len(x) > 0:
        x = next(iter(x.values())) if isinstance(x, dict) else x[0]
    return len(x) if np.ndim(x) >= 1 else None


def _resumed_directory(run_id: str, config: Any, resolved: Dict[str, Any]) -> Path:
    """The output directory of the stopped run ``run_id`` that this call continues, once it is known
    that it can (:func:`lossexp.tracking.resume.checkpoint_of`) and is given its own config again."""
    from lossexp.tracking import resume, store

    uri = store.resolve_uri(config.tracking.uri, Path.cwd())
    directory = resume.checkpoint_of(run_id, uri, config.trainer.epochs)
    resume.check_same_config(run_id, uri, resolved)
    return directory.parent


def compose(model: Any, loss: Union[str, LossEntry, Iterable[LossEntry]] = (),
            task_loss: str = "mean_squared_error") -> Any:
    """``model`` with the loss components inserted and attached, as a Keras model to compile and
    fit yourself (its ``compute_loss`` adds every component; ``task_loss`` is its ``compile``'s loss when
    given none). A
    network that calls ``add_loss`` in a ``call()`` is called once on a batch first, so that its
    losses are seen (reported as ``loss/other``)."""
    from lossexp.training.supervised import compose as compose_model

    return compose_model(model, components(loss), task_loss=task_loss, name=f"{model.name}_composed")


def _batch_level(callbacks: Sequence[Any]) -> Optional[str]:
    """The class name of the first callback that overrides a training batch hook (None if none does;
    a ModelCheckpoint saving each epoch has the hook but no use for it)."""
    import keras

    base = keras.callbacks.Callback
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.ModelCheckpoint) and callback.save_freq == "epoch":
            continue
        if any(getattr(type(callback), hook, None) is not getattr(base, hook)
               for hook in ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")):
            return type(callback).__name__
    return None


def _rate_setter(callbacks: Sequence[Any]) -> Optional[str]:
    """The class name of the first of Keras' callbacks that set the optimizer's learning rate
    (``ReduceLROnPlateau``, ``LearningRateScheduler``) among ``callbacks``; None if none is."""
    import keras

    setters = (keras.callbacks.ReduceLROnPlateau, keras.callbacks.LearningRateScheduler)
    return next((type(callback).__name__ for callback in callbacks if isinstance(callback, setters)), None)


def _check_rate_setters(callbacks: Sequence[Any], learning_rate: Any) -> None:
    """A callback that sets the rate of an optimizer whose rate is a schedule is one line before any run:
    Keras cannot set it, and failed with a traceback at the callback's first change, after epochs of
    training for ``ReduceLROnPlateau``."""
    setter = _rate_setter(callbacks)
    if setter and isinstance(learning_rate, Mapping):
        raise invalid_value("optimizer.learning_rate", f"a number for {setter}, which sets the optimizer's rate "
                            "(a schedule's rate cannot be set)", dict(learning_rate))


def _given_keys(argv: Sequence[str]) -> set:
    """The config keys the overrides set (``trainer.batch_size`` of ``+trainer.batch_size=8``)."""
    return {override.lstrip("+~").split("=")[0] for override in argv}


def _where_it_goes(keyword: str, value: Any) -> str:
    """For a keyword of Keras' ``fit`` or ``compile`` that is a key of a section (``epochs=3``): where
    it goes (``, e.g. trainer={'epochs': 3}``); else nothing."""
    from dataclasses import fields

    from lossexp.config import ObjectiveConfig, TaskConfig, TrackingConfig, TrainerConfig

    sections = {"trainer": TrainerConfig, "task": TaskConfig, "tracking": TrackingConfig, "objective": ObjectiveConfig}
    section = next((name for name, kind in sections.items() if keyword in {f.name for f in fields(kind)}), None)
    return f", e.g. {section}={{{keyword!r}: {value!r}}}" if section else ""


def fit(model: Any, data: Any, loss: Union[str, LossEntry, Iterable[LossEntry]] = (),
        overrides: Sequence[str] = (), callbacks: Sequence[Any] = (), validation_data: Any = None,
        resume: Optional[str] = None, **sections: Any) -> FitResult:
    """Train ``model`` on ``data`` with the ``loss`` components (:func:`loss_entries`: a list, one entry,
    or ``"hist_avg+activity"``) and record the run (see the module docstring); ``callbacks`` (Keras
    callbacks) run after lossexp's own. ``validation_data`` (in ``data``'s form, or arrays beside a
    stream) validates in place of the last ``trainer.validation_split`` of ``data``.
    ``resume``: the id of a run of this same call that stopped (a Ctrl-C, a dead kernel): it continues
    from the end of its last finished epoch, in that run (only ``trainer.epochs`` may differ).

    Raises :class:`lossexp.errors.ConfigError` (one line, nothing recorded) for anything invalid.
    The process's global state is left as it was (:mod:`lossexp.session`): the random generators that
    ``trainer.seed`` seeds continue the user's streams after the fit, and a Hydra of the user's stays.
    """
    from lossexp import session

    with session.users_random_state():
        return _fit(model, data, loss, overrides, callbacks, validation_data, resume, sections)


def _fit(model: Any, data: Any, loss: Union[str, LossEntry, Iterable[LossEntry]], overrides: Sequence[str],
         callbacks: Sequence[Any], validation_data: Any, resume: Optional[str], sections: Dict[str, Any]) -> FitResult:
    """:func:`fit`'s work, within the user's global state kept aside."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf

    from lossexp import CONF_DIR, project, quiet, session
    from lossexp.config import Selection, validate
    from lossexp.data.dataset import Dataset, as_dataset
    from lossexp.losses.entries import check_selected, entries_of
    from lossexp.overrides import rewrite_loss
    from lossexp.precheck import translate_errors
    from lossexp.registry import available, register_config_nodes
    from lossexp.train import execute
    from lossexp.tracking.users_run import follow_users_experiment, nest_in_users_run
    from lossexp.training.trainer import DEFAULT

    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"Unknown keyword {unknown[0]}: fit() takes the sections {', '.join(SECTIONS)}"
                          + _where_it_goes(unknown[0], sections[unknown[0]]))
    quiet.quiet_libraries()  # the console of `lossexp train`: MLflow's INFO lines (a new store's tables) hidden
    project.load()
    register_config_nodes()  # parts registered without a YAML (the project's, a notebook's) are chosen by name
    loss = loss_entries(loss)
    names, instances, options = _split_loss(loss)
    # a second instance of a class (its options name a kind) is added as a whole entry, like
    # +loss.slow_avg={kind: hist_avg, …} on the command line; the others are composed by name
    extra = [name for name in names if name not in available("loss") and "kind" in options.get(name, {})]
    argv = [f"loss={'+'.join(n for n in names if n not in extra) or 'none'}"]
    argv += [f"model={model}"] if isinstance(model, str) else []
    argv += [f"data={data}"] if isinstance(data, str) else []
    argv += [f"+loss.{name}={override_value(options[name])}" for name in extra]
    argv += [f"loss.{name}.{key}={override_value(value)}" for name, opts in options.items() if name not in extra
             for key, value in opts.items()]
    for section, values in sections.items():
        argv += _section_overrides(section, values)
    argv = rewrite_loss([*argv, *overrides], available("loss"))
    with session.beside_users_hydra(), \
            initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="lossexp_api"):
        with translate_errors(argv):
            cfg = hydra_compose("config", overrides=argv)
    check_selected([name for name in names if name not in extra], cfg.get("loss"))  # before validate: see precheck
    config = validate(cfg)
    _check_rate_setters(callbacks, config.optimizer.options.get("learning_rate"))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    network = None if isinstance(model, str) else model
    if network is not None:
        config.model = Selection(getattr(network, "name", "network"))
        resolved["model"] = {"name": config.model.name, "source": "python"}
    dataset = None
    if validation_data is not None:
        if isinstance(data, (str, Dataset)):
            raise invalid_value("validation_data", "None with data of a registered name or a lossexp Dataset "
                                "(its source returns {'train': …, 'validation': …})", type(validation_data).__name__)
        data = {"train": data, "validation": validation_data}
    if not isinstance(data, str):
        named = {key: by_output_name(part, network) for key, part in data.items()} if isinstance(data, dict) \
            else by_output_name(data, network)
        with project.user_code_errors("reading the data"):  # a PyDataset or generator of the project's, read here
            dataset = data if isinstance(data, Dataset) else as_dataset("python", named)
        if dataset.batch_size and "trainer.batch_size" not in _given_keys(argv):
            config.trainer.batch_size = resolved["trainer"]["batch_size"] = dataset.batch_size  # as Keras' fit
        config.data = Selection(dataset.name)
        counted = dataset.in_memory or dataset.size is not None  # a stream of unknown length, not counted: None
        resolved["data"] = {"name": dataset.name, "source": "python", "examples": dataset.examples if counted else None,
                            **({"held_out": dataset.held_out} if dataset.held_out is not None and counted else {})}
    from lossexp.losses.entries import build_components

    named = {c.name: c for c in build_components({name: config.loss[name] for name in names})}
    built = [entry if not isinstance(entry, (str, tuple)) else named[entry if isinstance(entry, str) else entry[0]]
             for entry in loss]  # as composed: the overrides apply to named components too
    config.loss = entries_of(built)
    resolved["loss"] = config.loss
    base = Path.cwd()
    if resume is None:  # the user's mlflow.set_experiment; inside their mlflow.start_run(): its child, their run left running
        experiment_given = "tracking.experiment" in _given_keys(argv)
        follow_users_experiment(config, resolved, experiment_given, base)
        nest_in_users_run(config, resolved, experiment_given, base)
    output = base / "outputs" / "runs" / datetime.datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
    if resume is not None:
        output = _resumed_directory(resume, config, resolved)
    batch_level = _batch_level(callbacks)
    if batch_level and config.trainer.execution_steps > 1:
        print(f"lossexp: warning: {batch_level}'s batch hooks run once per {config.trainer.execution_steps} steps "
              "(lossexp's steps_per_execution is trainer.log_every_n_steps); trainer={'steps_per_execution': 1} "
              "runs them every step, as Keras' fit does by default", file=sys.stderr)
    try:
        outcome = execute(config, resolved, base, output, network=network, data=dataset, components=built,
                          regime=DEFAULT if network is not None else None, callbacks=callbacks, resume_run=resume)
    except (KeyboardInterrupt, Terminated) as stopped:  # a notebook's interrupt: which run, and how to go on
        print(f"lossexp: interrupted; {_what_became_of_the_run(stopped)}", file=sys.stderr)
        raise
    return FitResult(outcome.history, outcome.run_id)


def _what_became_of_the_run(stopped: BaseException) -> str:
    """``the run ID ended KILLED`` (and how ``resume=`` continues it when it kept a checkpoint), or that
    nothing was recorded when it stopped before its run started."""
    run_id, status = getattr(stopped, "run_id", None), getattr(stopped, "run_status", None)
    if run_id is None or status is None:
        return "stopped before its run started: nothing was recorded"
    going_on = (f" (continue it: the same lossexp.fit(...) call with resume={run_id!r})"
                if getattr(stopped, "resume_command", None) else "")
    return f"the run {run_id} ended {status}{going_on}"
