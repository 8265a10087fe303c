"""The user's project: their own configs and code, used exactly like lossexp's own.

A project is an ordinary directory holding

* ``conf/<group>/<name>.yaml`` — the user's models, data sets, optimizers, loss components and
  experiments (same format as lossexp's ``conf/``), layered *after* lossexp's on Hydra's search
  path (``hydra_plugins/lossexp_project``), so ``model=my_net`` finds ``conf/model/my_net.yaml``;
* Python modules that register the user's parts (``@lossexp.register_model("my_net")``, …),
  named in the project's ``pyproject.toml``::

      [tool.lossexp]
      modules = ["my_model", "my_data", "my_term"]   # imported from the project directory
      conf = "conf"                                   # the default

The project is the nearest directory, from the working directory up, whose ``pyproject.toml``
has a ``[tool.lossexp]`` table; failing that, the working directory if it has a ``conf/``
directory (configs only). ``$LOSSEXP_PROJECT`` names it explicitly; the CLI sets it, so every
sweep worker (joblib, submitit) finds the same project whatever its working directory.

Only the modules the user's own ``pyproject.toml`` lists are imported: nothing in a config — a
replayed run's, a search space's — can make lossexp import code. A module that fails to import
is one line naming the file and line.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import os
import re
import sysconfig
import sys
import tomllib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from lossexp import CONF_DIR
from lossexp.errors import ConfigError, NonFiniteLoss

#: names the project's directory for lossexp and every process it starts
ENV = "LOSSEXP_PROJECT"
#: the run tag naming the project a run was trained with (so a replay elsewhere can say where its parts are)
TAG = "lossexp.project"
#: config groups a project may add entries to
GROUPS = ("model", "data", "optimizer", "loss", "experiment", "hparams_search")


@dataclass(frozen=True)
class Project:
    """A user project: its directory, its config directory (if any) and the modules it registers."""

    root: Path
    conf_dir: Optional[Path]
    modules: Tuple[str, ...] = ()

    def owns(self, module: str) -> bool:
        """Whether ``module`` is one of the project's modules (or inside one of its packages)."""
        return any(module == name or module.startswith(name + ".") for name in self.modules)

    def config_names(self, group: str) -> List[str]:
        """Stems of ``conf/<group>/*.yaml`` in the project."""
        if self.conf_dir is None:
            return []
        return sorted(path.stem for path in (self.conf_dir / group).glob("*.yaml"))


def _read_table(pyproject: Path) -> Optional[dict]:
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Invalid file {str(pyproject)!r}: {type(exc).__name__}: {exc}") from None
    table = data.get("tool", {}).get("lossexp")
    return table if isinstance(table, dict) or table is None else {}


def _from_table(root: Path, table: dict) -> Project:
    where = f"[tool.lossexp] in {root / 'pyproject.toml'}"
    modules = table.get("modules", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) and m.replace(".", "_").isidentifier()
                                                for m in modules):
        raise ConfigError(f"Invalid value for modules ({where}): expected a list of module names, got {modules!r}")
    shadowing = [m for m in modules if _shadows_stdlib(root, m)]
    if shadowing:
        name = shadowing[0].partition(".")[0]
        raise ConfigError(f"Invalid value for modules ({where}): {name!r} is a module of Python's standard library, "
                          f"which your {name} would replace for every import in the run (Keras' and TensorFlow's "
                          f"too: a circular import error in another module of yours); rename it, e.g. my_{name}")
    conf = table.get("conf", "conf")
    if not isinstance(conf, str):
        raise ConfigError(f"Invalid value for conf ({where}): expected a directory name, got {conf!r}")
    unknown = sorted(set(table) - {"modules", "conf"})
    if unknown:
        raise ConfigError(f"Unknown key {unknown[0]} ({where}): valid keys are conf, modules")
    conf_dir = (root / conf).resolve()
    return Project(root, conf_dir if conf_dir.is_dir() else None, tuple(modules))


def _shadows_stdlib(root: Path, module: str) -> bool:
    """Whether the project's ``module`` (its top-level file or package) has the name of a standard-library
    module: the project's directory comes first on ``sys.path``, so it would be imported in its place."""
    top = module.partition(".")[0]
    return top in sys.stdlib_module_names and ((root / f"{top}.py").is_file() or (root / top).is_dir())


def find(start: Path) -> Optional[Project]:
    """The project that ``start`` (a directory) belongs to, or None."""
    start = start.resolve()
    for directory in (start, *start.parents):
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            table = _read_table(pyproject)
            if table is not None:
                return _from_table(directory, table)
    conf_dir = start / "conf"
    if conf_dir.is_dir() and conf_dir.resolve() != CONF_DIR.resolve():
        return Project(start, conf_dir.resolve())
    return None


@functools.lru_cache(maxsize=None)
def _located(explicit: Optional[str], cwd: str) -> Optional[Project]:
    if explicit:
        root = Path(explicit)
        if not root.is_dir():
            raise ConfigError(f"Invalid value for ${ENV}: expected a project directory, got {explicit!r}")
        return find(root) or Project(root.resolve(), None)
    return find(Path(cwd))


def current() -> Optional[Project]:
    """The project of this process: ``$LOSSEXP_PROJECT``, else the one the working directory is in."""
    return _located(os.environ.get(ENV) or None, os.getcwd())


def run_tags() -> dict:
    """``{lossexp.project: its directory}`` for a run trained with a project (empty without one)."""
    found = current()
    return {TAG: str(found.root)} if found is not None else {}


def located(error: ConfigError, trained_in: Optional[str]) -> ConfigError:
    """``error`` about a part no registry knows (``Unknown model 'my_net'…``) that a replayed run names, or
    a class its saved model holds that Keras cannot locate (a project's component), with — when the run
    was trained with another project than this process's (``trained_in``, its :data:`TAG`) — where that
    project is and how to use it, first (what fails here, a class Keras cannot locate, says less); any
    other error as it is."""
    found = current()
    unknown = str(error).startswith("Unknown ") or "Could not locate " in str(error)
    if not trained_in or not unknown or (found is not None and str(found.root) == trained_in):
        return error
    return ConfigError(f"The run was trained with the project {trained_in}: run lossexp there, or set "
                       f"{ENV}={trained_in} — here: {error}")


def export() -> None:
    """Name the current project in ``$LOSSEXP_PROJECT`` for the processes lossexp starts."""
    found = current()
    if found is not None:
        os.environ[ENV] = str(found.root)


def check_names() -> None:
    """A project config that has the name of one of lossexp's would be shadowed: refuse it."""
    found = current()
    if found is None:
        return
    for group in GROUPS:
        for name in found.config_names(group):
            if (CONF_DIR / group / f"{name}.yaml").is_file():
                raise ConfigError(f"Invalid file {str(found.conf_dir / group / (name + '.yaml'))!r}: lossexp ships "
                                  f"{group}={name}; give yours another name")


_loaded: set = set()


def load() -> None:
    """Import the project's modules (once per process), so that they register their parts.

    A module that fails to import is a :class:`ConfigError` naming the file and line.
    """
    found = current()
    if found is None or found.root in _loaded:
        return
    _loaded.add(found.root)
    if str(found.root) not in sys.path:
        sys.path.insert(0, str(found.root))
    for module in found.modules:
        try:
            importlib.import_module(module)
        except ConfigError:
            raise
        except Exception as exc:  # the user's code: one line, where it broke
            _loaded.discard(found.root)
            if isinstance(exc, ModuleNotFoundError) and exc.name is not None and \
                    (module == exc.name or module.startswith(f"{exc.name}.")):
                # the listed module itself is missing: Python's importer is no place in the user's code
                path = module.replace(".", "/")
                raise ConfigError(f"Invalid project module {module!r} ({found.root / 'pyproject.toml'}, [tool.lossexp] "
                                  f"modules): no {path}.py nor {path}/__init__.py in {found.root}") from None
            raise ConfigError(f"Invalid project module {module!r} ({where_it_broke(exc, found.root)}): "
                              f"{type(exc).__name__}: {exc}") from None


def where_it_broke(exc: BaseException, root: Optional[Path] = None) -> str:
    """``file.py:12`` of the innermost frame of the user's own code under ``root`` — by default the
    project's root, else the working directory; not an installed package's or lossexp's (a
    SyntaxError's own file and line)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    if root is None:
        found = current()
        root = found.root if found is not None else Path.cwd()
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if _in_project(f.filename, root)] or frames
    return f"{inside[-1].filename}:{inside[-1].lineno}" if inside else str(root)


def _in_project(filename: str, root: Path) -> bool:
    """Whether a source file is the project's own code (not an installed package or lossexp; not one of
    Python's pseudo-files, ``<frozen runpy>``, ``<string>``, which would resolve against the working
    directory — ``python -m lossexp.cli`` run in the project put ``<frozen runpy>`` in it; nor a compiled
    extension's source, named relatively — ``numpy/random/_common.pyx`` was taken for the project's)."""
    if filename.startswith("<") and filename.endswith(">"):
        return False
    if not Path(filename).is_absolute() and not Path(filename).is_file():  # a compiled extension's source
        return False
    path = Path(filename).resolve()
    return (path.is_relative_to(root) and not {"site-packages", "dist-packages"} & set(path.parts)
            and not path.is_relative_to(Path(__file__).resolve().parent))


def user_frame(exc: BaseException, anywhere: bool = True) -> Optional[traceback.FrameSummary]:
    """The innermost frame of ``exc``'s traceback in the current project's code; without one and with
    ``anywhere``, in code of the user's outside any project (a notebook's cell, a script beside it, that
    gave ``lossexp.fit`` its network: its layer's ``call`` failing on the first batch was "cannot take
    the inputs", no line) that Keras or another package called back; None if neither is in it."""
    frames = traceback.extract_tb(exc.__traceback__)
    found = current()
    inside = [f for f in frames if _in_project(f.filename, found.root)] if found is not None else []
    if not inside and anywhere:  # below the first package's frame: not the code that called in, which caught it
        codes = [frame.f_code for frame, _ in traceback.walk_tb(exc.__traceback__)]
        caught = 0  # lossexp's context managers that caught it come first (user_code_errors' frame, …)
        while caught < len(frames) and codes[caught].co_flags & inspect.CO_GENERATOR and _lossexps(frames[caught].filename):
            caught += 1
        frames = frames[caught:]  # then the code in their with-block, which called in: a package's below it
        called = next((i for i, f in enumerate(frames) if i and (_installed(f.filename) or _lossexps(f.filename))),
                      len(frames))
        inside = [f for f in frames[called:] if _users_own(f.filename)]
    return inside[-1] if inside else None


#: where Python's own modules are (their frames are nobody's code of the user's)
_STDLIB = {Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")}


def _users_own(filename: str) -> bool:
    """Whether a source file is code of the user's wherever it is: not lossexp's, an installed package's,
    Python's own modules or one of its pseudo-files (``<frozen runpy>``)."""
    if filename.startswith("<") and filename.endswith(">"):
        return False
    path = Path(filename).resolve()
    return not (_installed(filename) or _lossexps(filename) or any(path.is_relative_to(lib) for lib in _STDLIB))


def _lossexps(filename: str) -> bool:
    """Whether a source file is lossexp's own (installed or, in a checkout's editable install, not)."""
    return Path(filename).resolve().is_relative_to(Path(__file__).resolve().parent)


def _installed(filename: str) -> bool:
    """Whether a source file is an installed package's."""
    return bool({"site-packages", "dist-packages"} & set(Path(filename).parts))


#: a frame of a Python traceback written out as text
TEXT_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
#: the line that ends a Python traceback written out as text: ``ValueError: message``
TEXT_EXCEPTION = re.compile(r"^\s*((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)): (.*)$", re.M)


def embedded_failure(exc: BaseException) -> Optional[Tuple[traceback.FrameSummary, str]]:
    """(the innermost project frame, ``"ValueError: message"``) of the project's Python — or of the user's
    outside any project, where it is the innermost frame — that failed inside a TensorFlow op — a
    ``tf.data`` generator or ``py_function`` reading the user's files —
    whose traceback TensorFlow carries as text in its own error's message, or of an op the project's
    code created that failed as the graph ran (``"InvalidArgumentError: assertion failed: …"``, the
    text after the frame that defined it); None otherwise."""
    if not type(exc).__module__.startswith("tensorflow"):
        return None
    found, message = current(), str(exc)
    texts = list(TEXT_FRAME.finditer(message))
    frames = [match for match in texts if _in_project(match.group(1), found.root)] if found is not None else []
    if not frames and texts and _users_own(texts[-1].group(1)):
        # code of the user's outside any project (a notebook's, a script's generator given to lossexp.fit): only as
        # the innermost frame, never a caller that a graph op's "defined at" stack names above Keras' frames
        frames = texts[-1:]
    if not frames:
        return None
    last = frames[-1]
    raised = TEXT_EXCEPTION.search(message, last.end())
    if raised:
        summary = f"{raised.group(1).rsplit('.', 1)[-1]}: {raised.group(2)}"
    else:  # an op the project's code made failed as the graph ran (a tf.debugging assertion): its message follows
        detail = next((line.strip() for line in message[last.end():].splitlines()  # past the frames below it
                       if line.strip() and not line.strip().startswith("[[") and not TEXT_FRAME.match(line.strip())), "")
        summary = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return traceback.FrameSummary(last.group(1), int(last.group(2)), last.group(3)), summary


#: what TensorFlow wraps an eager op's message in: ``{{function_node __wrapped__MatMul_device_/job:…/CPU:0}}`` before
#: it, `` name: `` (the op's empty name) after it — 90 characters of a one-line error that say nothing to a user
_TF_WRAPPING = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s+name:\s*$")


#: TensorFlow's refusals of a tensor traced into a graph used as a value — Python's ``if`` or ``for`` on it,
#: NumPy, ``.numpy()`` —, each followed by a paragraph of advice on eager mode and AutoGraph
_SYMBOLIC_VALUE = re.compile(r"Using a symbolic `tf\.Tensor` as a Python `bool` is not allowed\."
                             r"|Iterating over a symbolic `tf\.Tensor` is not allowed\."
                             r"|'SymbolicTensor' object has no attribute 'numpy'"
                             r"|Cannot convert a symbolic tf\.Tensor \([^)]*\) to a numpy array\.")
#: what to write instead, in a term, a network's ``call`` or a stream's map alike
TRACED = (" (your code is traced into a graph, where a tensor has no value yet: keras.ops in place of NumPy and "
          ".numpy(), ops.where or ops.cond in place of Python's if on a tensor, an op over an axis in place of a loop)")


def one_line(message: str, limit: int = 400) -> str:
    """An exception's message as one line: Keras' colour codes and its 'Arguments received' part dropped, and
    TensorFlow's wrapping of an eager op's message (``{{function_node …}}``, a trailing empty `` name:``); a
    tensor traced into a graph used as a value (:data:`_SYMBOLIC_VALUE`): TensorFlow's first sentence and what
    to write instead (:data:`TRACED`), not its advice on eager mode and AutoGraph."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", message).split("Arguments received by")[0]
    text = _TF_WRAPPING.sub("", text.strip())
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    symbolic = _SYMBOLIC_VALUE.search(text)
    if symbolic is not None:  # the frames TensorFlow quotes before it ("in user code: File …") are named apart
        text = text[:symbolic.start()].split("in user code:")[0] + symbolic.group() + TRACED
    return text if len(text) <= limit else text[:limit - 1] + "…"


#: a :class:`ConfigError`'s one line as TensorFlow carries it in its own error's message, raised by lossexp's reader
#: of a streamed file inside a ``py_function`` (a text cell in a numeric column met mid-epoch): a traceback before
_EMBEDDED_REFUSAL = re.compile(r"lossexp\.errors\.ConfigError: (.+)")


@contextlib.contextmanager
def user_code_errors(while_doing: str) -> Iterator[None]:
    """An exception raised through the project's own code (a model's ``call``, a data loader, a
    component's ``term``) while ``while_doing`` becomes one :class:`ConfigError` line naming the file,
    line and function, not a traceback; any other exception passes unchanged."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as exc:
        if isinstance(exc, NonFiniteLoss):
            raise
        refused = _EMBEDDED_REFUSAL.search(str(exc)) if type(exc).__module__.startswith("tensorflow") else None
        if refused is not None:  # lossexp's own line, raised in a stream's reader inside a TensorFlow op
            raise ConfigError(refused.group(1).strip()) from None
        frame, failure = user_frame(exc, anywhere=False), f"{type(exc).__name__}: {str(exc)}"
        embedded = embedded_failure(exc) if frame is None else None  # inside a TensorFlow op: a stream's reader
        if embedded is not None:
            frame, failure = embedded
        frame = frame or user_frame(exc)
        if frame is None:
            raise
        hint = ""
        if while_doing == "in training" and _validating(exc):  # fit's validation: a term given context.step None
            while_doing = "in validation (fit's, after the epoch's training steps)"
            hint = " (a component's context.step is None in validation)" if "None" in failure else ""
        raise ConfigError(f"Your code failed {while_doing} at {frame.filename}:{frame.lineno} (in {frame.name}): "
                          f"{one_line(failure)}{hint}") from None


def _validating(exc: BaseException) -> bool:
    """Whether ``exc`` was raised through a ``test_step`` (``fit`` validating at an epoch's end): Keras
    filters its own frames out of the traceback, a model's ``test_step`` (lossexp's composed one) stays."""
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name == "test_step":
            return True
        traceback = traceback.tb_next
    return False
