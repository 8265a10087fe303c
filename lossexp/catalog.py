"""``lossexp components``: what can be composed, read from ``conf/`` and the sources.

Models, data sets and loss components with their options, defaults and one-line help. It reads
YAML files and docstrings (via ``ast``) and imports neither TensorFlow nor the components, so it
answers in well under a second.
"""
from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from lossexp import CONF_DIR
from lossexp.losses import weight_spec

PACKAGE_DIR = Path(__file__).resolve().parent
_OPTION_LINE = re.compile(r"^(\s*)([A-Za-z_][\w]*):\s*(.*?)\s*(?:#\s*(.*))?$")


def yaml_options(path: Path) -> Tuple[str, List[Tuple[str, str, str]]]:
    """(header comment, [(key, default, comment)]) of a config file, keeping its comments."""
    header, options = [], []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            header.append(line.lstrip("# ").strip())
            continue
        match = _OPTION_LINE.match(line)
        if match and match.group(3):
            options.append((match.group(2), match.group(3), match.group(4) or ""))
    return " ".join(header), options


def component_docstring(name: str) -> str:
    """The docstring of the class registered as ``name`` in ``lossexp/losses/<name>.py``."""
    source = PACKAGE_DIR / "losses" / f"{name}.py"
    if not source.exists():
        return ""
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ClassDef):
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") == "register"
                        and decorator.args and getattr(decorator.args[0], "value", None) == name):
                    return inspect.cleandoc(ast.get_docstring(node) or "")
    return ""


def _group(group: str) -> Dict[str, Path]:
    return {path.stem: path for path in sorted((CONF_DIR / group).glob("*.yaml"))}


def render(detail: Optional[str] = None) -> str:
    """The text ``lossexp components [NAME]`` prints."""
    lines: List[str] = []
    sections = (
        ("Models", "model", "model=NAME"),
        ("Data sets", "data", "data=NAME"),
        ("Optimizers", "optimizer", "optimizer=NAME"),
        ("Loss components", "loss", "loss=a+b, options loss.NAME.KEY=VALUE"),
        ("Experiments", "experiment", "experiment=NAME, then any override"),
    )
    for title, group, usage in sections:
        entries = _group(group)
        if detail and detail not in entries:
            continue
        lines.append(f"{title} ({usage}):")
        for name, path in entries.items():
            if detail and name != detail:
                continue
            header, options = yaml_options(path)
            if group == "loss":
                doc = component_docstring(name)
                summary = doc.split("\n\n")[0].replace("\n", " ") if doc else header
                lines.append(f"  {name:<10} {summary}")
                if detail:
                    lines += ["", *("    " + line for line in doc.splitlines()), ""]
                options = [o for o in options if o[0] != name]
            elif group == "experiment":  # a recipe's whole setup: its description, not its keys
                lines.append(f"  {name:<10} {header.replace('@package _global_', '').strip()}")
                options = []
            else:
                lines.append(f"  {name:<10} {header}")
            for key, default, comment in options:
                if key == "name":
                    continue
                note = f"  # {comment}" if comment else ""
                lines.append(f"      {key}: {default}{note}")
        lines.append("")
    if detail in (None, "weight"):
        lines += ["Weights (loss.NAME.weight: a number, a schedule or trainable):",
                  *("  " + line for line in inspect.cleandoc(weight_spec.__doc__ or "").splitlines()), ""]
    if detail and not lines:
        known = sorted({n for _, g, _ in sections for n in _group(g)})
        raise KeyError(f"Unknown name {detail!r}: valid choices are {', '.join(known)}")
    return "\n".join(lines).rstrip() + "\n"

