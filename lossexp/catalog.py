"""``lossexp components [NAME]``: every part that can be chosen, whoever wrote it.

Models, data sets, optimizers, loss components, weighting methods and experiments — lossexp's own, installed
packages' (entry points) and the user project's — with their options, defaults and one-line
help; and the sections every run has (``task``, ``trainer``, ``tracking``, ``objective``,
``ablation``: ``lossexp components task``), their keys as the root config sets them. It reads YAML files and source files (via ``ast``), and imports neither TensorFlow nor the
parts, so it answers in well under a second.
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from lossexp import CONF_DIR, project, registry
from lossexp.errors import yaml_place
from lossexp.losses import weight_spec

_OPTION_LINE = re.compile(r"^(\s*)([A-Za-z_][\w]*):\s*(.*?)\s*(?:#\s*(.*))?$")
#: (title, kind, group, usage)
SECTIONS = (
    ("Models", "model", "model", "model=NAME, options model.KEY=VALUE"),
    ("Data sets", "data", "data", "data=NAME, options data.KEY=VALUE"),
    ("Optimizers", "optimizer", "optimizer", "optimizer=NAME, options optimizer.KEY=VALUE"),
    ("Loss components", "loss", "loss", "loss=a+b, options loss.NAME.KEY=VALUE"),
    ("Weighting methods", "weighting", "weighting", "weighting=NAME, options weighting.KEY=VALUE"),
    ("Experiments", None, "experiment", "experiment=NAME, then any override"),
)
#: the sections of every run's config: where their keys and comments are written
CONFIG_SECTIONS = {"task": ("config.yaml", "task"), "tracking": ("config.yaml", "tracking"),
                   "objective": ("config.yaml", "objective"), "ablation": ("config.yaml", "ablation"),
                   "trainer": ("trainer/default.yaml", None)}


@dataclass
class Part:
    """What the catalog says about one name."""

    name: str
    summary: str = ""
    doc: str = ""
    origin: str = ""
    #: (key, default, comment)
    options: List[Tuple[str, str, str]] = field(default_factory=list)
    examples: List[str] = field(default_factory=list)
    #: what is missing for the name to be selectable (a project's YAML whose component nothing registers)
    problem: str = ""


def yaml_options(path: Path) -> Tuple[List[str], List[Tuple[str, str, str]]]:
    """(header comment lines, [(key, default, comment)]) of a config file, keeping its comments."""
    header, options = [], []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            header.append(line.lstrip("# ").rstrip())
            continue
        match = _OPTION_LINE.match(line)
        if match and match.group(3):
            options.append((match.group(2), match.group(3), match.group(4) or ""))
    return header, options


def _registered_in(source: Path, name: str) -> Optional[ast.AST]:
    """The function or class in ``source`` decorated with ``register_*("name")``."""
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and decorator.args
                        and getattr(decorator.func, "id", getattr(decorator.func, "attr", "")).startswith("register")
                        and getattr(decorator.args[0], "value", None) == name):
                    return node
    return None


def _named(source: Path, attribute: str) -> Optional[ast.AST]:
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    return next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == attribute), None)


def _module_file(module: str) -> Optional[Path]:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _signature_options(node: ast.AST) -> List[Tuple[str, str, str]]:
    """(option, default) from a function's or a class constructor's parameters, read from source."""
    function = node if isinstance(node, ast.FunctionDef) else next(
        (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if function is None:
        return []
    args = function.args.args + function.args.kwonlyargs
    defaults = [None] * (len(function.args.args) - len(function.args.defaults)) + function.args.defaults \
        + function.args.kw_defaults
    return [(a.arg, ast.unparse(d) if d is not None else "(required)", "") for a, d in zip(args, defaults)
            if a.arg not in ("self", "data", "name")]


def _source_of(kind: str, name: str) -> Tuple[Optional[ast.AST], str]:
    """(the registered definition's AST, its origin) without importing anything."""
    if name in registry.shipped(kind):
        package = registry.KINDS[kind].package
        source = _module_file(f"{package}.{name}") or _module_file(package)
        return (_registered_in(source, name) if source else None), ""
    installed = registry.installed(kind)
    if name in installed:
        entry_point = installed[name]
        module, _, attribute = entry_point.value.partition(":")
        source = _module_file(module)
        dist = entry_point.dist.name if entry_point.dist is not None else module.split(".")[0]
        return (_named(source, attribute.split(".")[-1]) if source else None), f"package {dist}"
    found = project.current()
    if found is not None:
        for module in found.modules:
            source = _project_source(found, module)
            node = _registered_in(source, name) if source.is_file() else None
            if node is not None:
                return node, "project"
        return None, "project"
    return None, ""


def _project_source(found: project.Project, module: str) -> Path:
    """The file of the project's ``module``: ``a/b.py``, else the package's ``a/b/__init__.py``."""
    source = found.root / (module.replace(".", "/") + ".py")
    return source if source.is_file() else found.root / module.replace(".", "/") / "__init__.py"


def _unregistered(name: str, path: Path, options: List[Tuple[str, str, str]]) -> str:
    """What is missing when ``path``, the project's ``conf/loss/<name>.yaml``, selects a component that neither
    lossexp, an installed package nor a module of the project registers ("" when one does): ``loss=<name>``
    then fails at once with "Unknown loss component", which the catalog listed as if it were one."""
    found = project.current()
    if found is None or found.conf_dir is None or not path.is_relative_to(found.conf_dir):
        return ""
    kind = next((default for key, default, _ in options if key == "kind"), name)
    if kind in set(registry.shipped("loss")) | set(registry.installed("loss")) | set(_project_registered("loss")):
        return ""
    where = path.relative_to(found.root)
    unparsed = _unparsed_module(found)
    if unparsed:  # its decorators cannot be read: "no module has @register_component" sent the user looking for one
        return f"not read: {unparsed}, so loss={name} fails until it does"
    if kind != name:
        return f"not selectable: kind: {kind} in {where} names no registered loss component"
    modules = ", ".join(found.modules) or "none listed in pyproject.toml"
    return (f'not registered: no module of the project has @lossexp.register_component("{name}") '
            f"(its modules: {modules}), so loss={name} fails")


def _unparsed_module(found: project.Project) -> str:
    """``myterms.py:87 does not parse (SyntaxError: …)`` for the first of the project's modules Python cannot
    parse; empty when all parse."""
    for module in found.modules:
        source = _project_source(found, module)
        try:
            ast.parse(source.read_text(), filename=str(source))
        except SyntaxError as error:
            return f"{source.relative_to(found.root)}:{error.lineno} does not parse (SyntaxError: {error.msg})"
        except (OSError, UnicodeDecodeError):
            continue
    return ""


def _yaml_path(group: str, name: str) -> Optional[Path]:
    found = project.current()
    for conf_dir in (CONF_DIR, found.conf_dir if found is not None and found.conf_dir else None):
        if conf_dir is not None and (conf_dir / group / f"{name}.yaml").is_file():
            return conf_dir / group / f"{name}.yaml"
    return None


def describe(kind: Optional[str], group: str, name: str) -> Part:
    """Everything the catalog says about ``name`` of ``group``."""
    part = Part(name)
    path = _yaml_path(group, name)
    header, options = yaml_options(path) if path is not None else ([], [])
    if group == "experiment":  # a recipe's whole setup: its description and example lines
        lines = [line.strip() for line in header if line.strip() and "@package" not in line]
        part.examples = [line for line in lines if line.startswith("lossexp ")]
        part.summary = " ".join(line for line in lines if line not in part.examples)
        part.doc = part.summary
        return part
    node, part.origin = _source_of(kind, name) if kind else (None, "")
    part.doc = inspect.cleandoc(ast.get_docstring(node) or "") if node is not None else ""
    part.summary = " ".join((part.doc.split("\n\n")[0] if part.doc else " ".join(header)).split())
    if not part.summary and path is not None and path.is_relative_to(CONF_DIR):
        part.summary = " ".join(header)
    part.options = [o for o in options if o[0] not in ("name", name)] if path is not None else \
        (_signature_options(node) if node is not None else [])
    if kind == "loss" and path is not None:  # a component's YAML nests its options under its name
        part.options = [o for o in options if o[0] != name]
        part.problem = _unregistered(name, path, options)
    if path is not None:
        part.problem = _unparsed_yaml(path, group, name) or part.problem
    return part


def _unparsed_yaml(path: Path, group: str, name: str) -> str:
    """``not read: conf/loss/x.yaml, line 4: …`` when the YAML does not parse (its options, read line by line,
    were listed as if it did, and ``lossexp train`` then refused it); empty when it parses."""
    import yaml

    try:
        yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        return f"not read: {yaml_place(error, path)}, so {group}={name} fails until it parses"
    except (OSError, UnicodeDecodeError):
        return ""
    return ""


def _project_registered(kind: str) -> List[str]:
    """Names the project's modules register for ``kind``, read from their source (not imported)."""
    found = project.current()
    decorator = {"model": "register_model", "data": "register_data", "optimizer": "register_optimizer",
                 "loss": "register_component", "weighting": "register_weighting"}[kind]
    names = []
    for module in found.modules if found is not None else ():
        source = _project_source(found, module)
        try:
            tree = ast.parse(source.read_text())
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == decorator
                    and node.args and isinstance(getattr(node.args[0], "value", None), str)):
                names.append(node.args[0].value)
    return names


def _names(kind: Optional[str], group: str) -> List[str]:
    if kind is not None:
        return sorted(set(registry.available(kind)) | set(_project_registered(kind)))
    found = project.current()
    return sorted({p.stem for p in (CONF_DIR / group).glob("*.yaml")} | set(found.config_names(group) if found else ()))


def config_section(name: str) -> str:
    """A section of every run's config (``task``, ``trainer``, …) as its YAML sets it, comments included."""
    file, key = CONFIG_SECTIONS[name]
    text = (CONF_DIR / file).read_text().splitlines()
    if key is None:  # the file is the section
        body = [line for line in text if line.strip() and not line.startswith("#")]
    else:
        start = next(i for i, line in enumerate(text) if line.startswith(f"{key}:"))
        body = [text[start]]
        for line in text[start + 1:]:
            if line and not line.startswith((" ", "#")):
                break
            if line.strip():
                body.append(line)
        body = [line[2:] if line.startswith("  ") else line for line in body[1:]]
    return f"{name} ({name}.KEY=VALUE; in every run's config):\n" + "\n".join(f"  {line}" for line in body) + "\n"


def render(detail: Optional[str] = None) -> str:
    """The text ``lossexp components [NAME]`` prints."""
    if detail in CONFIG_SECTIONS:
        return config_section(detail)
    lines: List[str] = []
    for title, kind, group, usage in SECTIONS:
        names = _names(kind, group)
        if detail and detail not in names:
            continue
        lines.append(f"{title} ({usage}):")
        width = max((len(n) for n in names), default=0) + 2
        for name in names:
            if detail and name != detail:
                continue
            part = describe(kind, group, name)
            origin = f" [{part.origin}]" if part.origin else ""
            lines.append(f"  {name:<{width}}{part.summary}{origin}")
            if part.problem:
                lines.append(f"      ! {part.problem}")
            if detail:
                body = part.doc.splitlines() if group != "experiment" else []
                lines += ["", *("    " + line for line in body), ""] if body else []
            for example in part.examples:
                lines.append(f"      $ {example}")
            if kind == "optimizer" and not detail:
                continue  # thirteen Keras optimizers: their options with lossexp components NAME
            for key, default, comment in part.options:
                note = f"  # {comment}" if comment else ""
                lines.append(f"      {key}: {default}{note}")
        lines.append("")
    if detail in (None, "weight"):
        lines += ["Weights (loss.NAME.weight: a number, a schedule or trainable):",
                  *("  " + line for line in inspect.cleandoc(weight_spec.__doc__ or "").splitlines()), ""]
    if detail and not lines:
        known = sorted({n for _, kind, group, _ in SECTIONS for n in _names(kind, group)} | set(CONFIG_SECTIONS))
        raise KeyError(f"Unknown name {detail!r}: valid choices are {', '.join(known)}")
    return "\n".join(lines).rstrip() + "\n"


def registered_names() -> Dict[str, List[str]]:
    """Every selectable name, by config group (for tests and completion)."""
    return {group: _names(kind, group) for _, kind, group, _ in SECTIONS}
