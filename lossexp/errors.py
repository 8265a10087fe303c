"""User-facing errors: one line naming the bad key, the bad value and what is allowed.

The CLI prints ``ConfigError`` as ``error: <message>`` and exits with status 2, without a
traceback. Anything else that escapes is a bug and keeps its traceback. ``NonFiniteLoss`` and
``Terminated`` end a run (they live here, not with the guard that raises them, so that the CLI
catches them without importing TensorFlow).
"""
from __future__ import annotations

import contextlib
import signal
from typing import Any, Iterable, Iterator, Optional, Sequence

EXIT_BAD_INPUT = 2


class ConfigError(ValueError):
    """A mistake in the user's configuration or command line."""

    def __str__(self) -> str:
        """The message on one line: what the user typed may hold a newline or another control
        character, shown escaped (``\\n``) so the message stays one line."""
        return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in super().__str__())


def invalid_value(key: str, expected: str, got: Any) -> ConfigError:
    """``Invalid value for loss.hist_avg.decay: expected 0 < decay < 1, got 1.5``."""
    return ConfigError(f"Invalid value for {key}: expected {expected}, got {got!r}")


def unknown_name(what: str, got: Any, valid: Iterable[str]) -> ConfigError:
    """``Unknown model 'cnnn': valid choices are cnn, mlp``."""
    choices = ", ".join(sorted(valid)) or "(none)"
    return ConfigError(f"Unknown {what} {got!r}: valid choices are {choices}")


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the key and the step."""

    def __init__(self, key: str, value: float, step: int, first: Optional[int] = None,
                 together: Sequence[str] = ()) -> None:
        since = f" (first not finite at step {first})" if first is not None and first != step else ""
        # parts that went non-finite at the same steps as ``key``: a NaN gradient (the square root or a
        # norm at 0, a log of 0) made the weights NaN, and every part after them; their values cannot tell
        # whose gradient it was, and the first named (loss/task) sent the user to their data
        at_once = (f" — {', '.join(together)} too, from the same step: the weights went non-finite, from a NaN or "
                   f"infinite gradient the step before (a square root or norm at 0, a log of 0 — in the task loss or "
                   f"a component's term), or a step too large (optimizer.learning_rate); the values cannot tell "
                   f"whose") if together else ""
        super().__init__(f"{key} is {value} at step {step}{since}{at_once}; training stopped")
        self.key, self.value, self.step, self.first, self.together = key, value, step, first, tuple(together)

    def __reduce__(self) -> Any:
        """Rebuild from the same arguments: a sweep job's exception travels back to the launching
        process pickled (joblib, submitit), and must not break the worker pool there."""
        return type(self), (self.key, self.value, self.step, self.first, self.together)


class Terminated(BaseException):
    """The process received a termination signal (a BaseException, like KeyboardInterrupt,
    so that ``except Exception`` in library code does not swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum

    def __reduce__(self) -> Any:
        return type(self), (self.signum,)


def stop_beneath(exc: BaseException) -> Optional[BaseException]:
    """The ``KeyboardInterrupt`` or :class:`Terminated` that ``exc`` — an ``Exception`` — was raised while
    unwinding from: a signal's exception is raised between any two bytecodes, and library code cleaning up
    after it can fail in turn and hide it (OmegaConf, restoring its flags mid-merge: ``AttributeError:
    'NoneType' object has no attribute '_invalidate_flags_cache'``, a traceback and exit 1 where a SIGTERM's
    exit 143 and KILLED runs were due). None when nothing stopped the process, or when an exception replaced
    it on purpose (``raise … from None``)."""
    seen = set()
    while isinstance(exc, Exception) and id(exc) not in seen and not exc.__suppress_context__:
        seen.add(id(exc))
        exc = exc.__context__
    return exc if isinstance(exc, (KeyboardInterrupt, Terminated)) else None


@contextlib.contextmanager
def signals_unmasked() -> Iterator[None]:
    """Within the block, an ``Exception`` raised while unwinding from a signal's exception
    (:func:`stop_beneath`) is raised as that signal's exception, which the caller reports as a stop."""
    try:
        yield
    except Exception as raised:
        stopped = stop_beneath(raised)
        if stopped is None:
            raise
        raise stopped from None


def yaml_place(exc: Any, path: Optional[Any] = None) -> str:
    """``conf/model/x.yaml, line 3: expected ',' or ']', but got ':'``: where a YAML error of PyYAML's is and
    what it is; ``path`` the file when the error names none (text parsed from a string). The file relative to
    the working directory when it lies inside it."""
    from pathlib import Path

    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return f"{path}: {problem}" if path is not None else problem
    where = Path(path if path is not None else mark.name)
    shown = where.relative_to(Path.cwd()) if where.is_absolute() and where.is_relative_to(Path.cwd()) else where
    return f"{shown}, line {mark.line + 1}: {problem}"

