"""``lossexp new KIND NAME``: the files of a new part of the user's project — a loss component
(``--stateful``: one with state), a model or a data source.

Writes, in the current project (its directory, else the working directory):

* ``NAME.py`` — the part, registered as ``NAME``: a :class:`lossexp.LossComponent` subclass with one
  option and a ``term`` to fill in (with ``--stateful``, a term over a layer's outputs and state the
  step moves, docs/own_problem.md's "A component with state"); a model builder, a Dense stack whose
  layers are named as the components read them (``hidden_1`` …); a data source generating its rows
  from a seed;
* ``conf/<group>/NAME.yaml`` — its options' defaults (what ``loss=NAME``, ``model=NAME`` or
  ``data=NAME`` selects);
* ``tests/test_NAME.py`` — a test that passes as written: a term and its gradient against NumPy (and,
  stateful, its state over three training batches); a network's outputs, gradients and reload; a data
  source's rows taken by lossexp's checks, the same for the same options;
* ``pyproject.toml`` — ``NAME`` added to ``[tool.lossexp] modules`` (the table created if absent).

Nothing is overwritten: an existing file is an error. No TensorFlow import.
"""
from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from typing import List, NamedTuple, Sequence, Tuple

from lossexp import project, registry, scaffold_data, scaffold_model, scaffold_stateful
from lossexp.errors import ConfigError

USAGE = "lossexp new component|model|data NAME  (component: [--stateful])"
STATEFUL = "--stateful"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

COMPONENT = '''"""The ``{name}`` loss component (one class on lossexp's contract, one YAML: conf/loss/{name}.yaml)."""
from keras import ops

import lossexp


@lossexp.register_component("{name}")
class {cls}(lossexp.LossComponent):
    """term = mean(ŷ²) · scale — replace with your term, and say here what it computes and why.

    Options: ``weight``; ``scale``.
    """

    def __init__(self, weight=0.01, scale: float = 1.0, **kwargs):
        super().__init__(weight=weight, **kwargs)
        self.scale = self.require_number("scale", scale, minimum=0.0)

    def term(self, context: lossexp.LossContext):
        # context.y_true, context.y_pred, context.sample_weight (None without), context.network (its layers and
        # weights), context.training, context.step, context.x (the batch's inputs); intermediate outputs: declare
        # outputs_needed() and read context.outputs[name]; state: add_weight(trainable=False) in attach(network),
        # assigned here when context.training (docs/own_problem.md: "A component with state")
        return self.scale * ops.mean(ops.square(ops.cast(context.y_pred, "float32")))
'''

YAML = '''# {cls}: describe the term in one line (lossexp components lists it).
{name}:
  weight: 0.01
  scale: 1.0
'''

TEST = '''"""{name} against NumPy: its term and its gradient with respect to the predictions."""
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules

from lossexp import LossContext  # noqa: E402
from {name} import {cls}  # noqa: E402


def numpy_term(y: np.ndarray, scale: float) -> float:
    """The term written from its formula, independently of the Keras code."""
    return float(scale * np.mean(np.asarray(y, np.float64) ** 2))


def numpy_gradient(y: np.ndarray, scale: float) -> np.ndarray:
    return 2.0 * scale * np.asarray(y, np.float64) / y.size


def test_term_and_gradient_match_numpy():
    y = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    component = {cls}(name="{name}", scale=2.0)
    prediction = tf.constant(y)
    with tf.GradientTape() as tape:
        tape.watch(prediction)
        term = component.term(LossContext(y_true=None, y_pred=prediction, network=None, training=True))
    np.testing.assert_allclose(float(term), numpy_term(y, 2.0), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(term, prediction).numpy(), numpy_gradient(y, 2.0), rtol=1e-5)
'''


class Part(NamedTuple):
    """What ``lossexp new`` writes for one kind of part: the module, YAML and test templates
    (``str.format(name=…, cls=…)``), the config group — also the registry's kind — its YAML goes in,
    and the overrides that train with it (the next command printed)."""

    code: str
    yaml: str
    test: str
    group: str
    train: str


#: by ``lossexp new``'s KIND (and ``component`` with ``--stateful``)
PARTS = {
    "component": Part(COMPONENT, YAML, TEST, "loss", "loss={name}"),
    "component --stateful": Part(scaffold_stateful.COMPONENT, scaffold_stateful.YAML, scaffold_stateful.TEST, "loss",
                                 "loss={name}"),
    "model": Part(scaffold_model.CODE, scaffold_model.YAML, scaffold_model.TEST, "model", "model={name}"),
    # the default model is the digits' CNN, for images: an MLP takes the template's rows of features
    "data": Part(scaffold_data.CODE, scaffold_data.YAML, scaffold_data.TEST, "data", "data={name} model=mlp"),
}
#: what each config group's kind is called in messages
_PARTS_NAMED = {"loss": "loss components", "model": "models", "data": "data sources"}


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


_HEADER = re.compile(r"^[ \t]*\[[ \t]*tool[ \t]*\.[ \t]*lossexp[ \t]*\][^\S\n]*(?:#[^\n]*)?$", re.M)
_NEXT_TABLE = re.compile(r"^[ \t]*\[", re.M)
#: ``modules = [ ... ]``, its list possibly over several lines; strings and comments may hold ``]``
_MODULES = re.compile(r"""^[ \t]*modules[ \t]*=[ \t]*\[((?:"[^"\n]*"|'[^'\n]*'|#[^\n]*|[^\]"'#])*)\]""", re.M)
_ITEM = re.compile(r"""#[^\n]*|"[^"\n]*"|'[^'\n]*'|[^\s,#]+""")


def _with_item(body: str, item: str) -> str:
    """The body of a TOML list (between its brackets) with ``item`` appended, in the list's own layout:
    inline (``"a", "b"``) or one item per line, trailing comma and indentation as the last item has them."""
    items = [m for m in _ITEM.finditer(body) if not m.group().startswith("#")]
    if not items:
        return item + ("," + body if body.strip() else "")
    end = items[-1].end()
    line_end = body.find("\n", end)
    if line_end < 0:  # the last item shares the closing bracket's line
        return f"{body[:end]}, {item}{body[end:]}"
    comma = body[end:line_end].lstrip().startswith(",")
    indent = re.match(r"[ \t]*", body[body.rfind("\n", 0, items[-1].start()) + 1:]).group()
    return (body[:end] + ("" if comma else ",") + body[end:line_end]
            + f"\n{indent}{item}{',' if comma else ''}" + body[line_end:])


def _with_module(pyproject: Path, module: str) -> Tuple[str, str]:
    """``pyproject``'s text with ``module`` added to ``[tool.lossexp] modules``, and what was done, for the user.

    The text is edited in place, not re-serialised, so the user's formatting and comments survive: the
    edit stays inside the ``[tool.lossexp]`` table (its header may carry a comment; it ends at the next
    line starting with ``[``), where ``modules`` is extended, else inserted after the header; with no
    table, one is appended. The result is parsed again and must equal the old file with ``module``
    appended to that list, nothing else: an edit that would break the file or change anything else is a
    :class:`ConfigError`, raised before anything is written.
    """
    if not pyproject.exists():
        return (f'[tool.lossexp]\nmodules = ["{module}"]\n',
                f'created {pyproject.name} with [tool.lossexp] modules = ["{module}"]')
    text = pyproject.read_text()
    try:
        expected = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Invalid file {pyproject.name}: {exc}") from None
    table = expected.setdefault("tool", {}).setdefault("lossexp", {})
    listed = table.setdefault("modules", []) if isinstance(table, dict) else None
    if not isinstance(listed, list):
        raise ConfigError(f"Invalid file {pyproject.name}: [tool.lossexp] modules is not a list of module "
                          f"names; add {module!r} to it by hand")
    if module in listed:
        return text, f'"{module}" is already in [tool.lossexp] modules in {pyproject.name}'
    listed.append(module)  # what the file must read as once edited
    header = _HEADER.search(text)
    if header is None:
        new = (text.rstrip() + "\n\n" if text.strip() else "") + f'[tool.lossexp]\nmodules = ["{module}"]\n'
        done = f'added [tool.lossexp] modules = ["{module}"] to {pyproject.name}'
    else:
        after = _NEXT_TABLE.search(text, header.end())
        modules = _MODULES.search(text, header.end(), after.start() if after else len(text))
        if modules is None:
            new = text[:header.end()] + f'\nmodules = ["{module}"]' + text[header.end():]
        else:
            new = text[:modules.start(1)] + _with_item(modules.group(1), f'"{module}"') + text[modules.end(1):]
        done = f'added "{module}" to [tool.lossexp] modules in {pyproject.name}'
    try:
        edited = tomllib.loads(new) == expected
    except tomllib.TOMLDecodeError:
        edited = False
    if not edited:
        raise ConfigError(f"Invalid file {pyproject.name}: could not add {module!r} to [tool.lossexp] modules "
                          f"without breaking or changing anything else; add it by hand")
    return new, done


def new_part(kind: str, name: str, root: Path, stateful: bool = False) -> List[str]:
    """Write the files of a new part of ``kind`` (``component``, ``model``, ``data``; a component
    ``stateful``: the template with state) under ``root``; returns one line per thing done."""
    if not _NAME.match(name):
        raise ConfigError(f"Invalid value for NAME: expected a lowercase Python identifier (my_{kind}), got {name!r}")
    if name in sys.stdlib_module_names:  # NAME.py beside the project's modules would be imported in its place
        raise ConfigError(f"Invalid value for NAME: {name!r} is a module of Python's standard library, which "
                          f"{name}.py would replace for every import in a run (Keras' too); name it e.g. my_{name}")
    part = PARTS[f"{kind} {STATEFUL}" if stateful else kind]
    files = {root / f"{name}.py": part.code, root / "conf" / part.group / f"{name}.yaml": part.yaml,
             root / "tests" / f"test_{name}.py": part.test}
    for path in files:
        if path.exists():
            raise ConfigError(f"Invalid value for NAME: {path} exists; lossexp new overwrites nothing")
    installed = importlib.util.find_spec(name)  # on sys.path: found, not imported
    if installed is not None:
        raise ConfigError(f"Invalid value for NAME: {name!r} is an installed module ({installed.origin}), which "
                          f"{name}.py beside the project's modules would replace for every import of it in a run; "
                          f"name it e.g. my_{name}")
    if name in registry.available(part.group) or name in registry.RESERVED.get(part.group, ()):
        raise ConfigError(f"Invalid value for NAME: {name!r} is taken; the {_PARTS_NAMED[part.group]} are "
                          f"{', '.join(registry.available(part.group))}")
    pyproject, (text, added) = root / "pyproject.toml", _with_module(root / "pyproject.toml", name)
    done = []  # pyproject.toml's new text is checked before anything is written, and written last
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(name=name, cls=_class_name(name)))
        done.append(f"wrote {path.relative_to(root)}")
    pyproject.write_text(text)
    return done + [added]


def main(args: Sequence[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(f"usage: {USAGE}\n\n{__doc__.split(chr(10) * 2, 1)[1]}", end="")
        return 0 if args else 2
    stateful = STATEFUL in args
    rest = [arg for arg in args if arg != STATEFUL]
    kinds = sorted({kind.split()[0] for kind in PARTS})
    if len(rest) != 2 or rest[0] not in kinds or rest[1].startswith("-") or (stateful and rest[0] != "component"):
        raise ConfigError(f"Invalid value for lossexp new: expected '{USAGE}', got {' '.join(args)!r}")
    kind, name = rest
    found = project.current()
    root = found.root if found is not None else Path.cwd()
    for line in new_part(kind, name, root, stateful=stateful):
        print(f"lossexp: {line}")
    print(f"lossexp: then: lossexp train {PARTS[kind].train.format(name=name)}  (and python -m pytest tests/test_{name}.py; pytest "
          f"is no dependency of lossexp: pip install pytest)")
    return 0
