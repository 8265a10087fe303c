"""What the report commands share: one-line argument errors (exit 2) and printing a table."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, List, NoReturn, Sequence

from lossexp.errors import EXIT_BAD_INPUT, ConfigError


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument as a :class:`ConfigError` (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message}")


def run(command: Callable[[List[str]], int], argv: Sequence[str]) -> int:
    """Run a report command; a :class:`ConfigError` becomes ``lossexp: error: …`` and exit 2."""
    try:
        return command(list(argv))
    except ConfigError as exc:
        print(f"lossexp: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
