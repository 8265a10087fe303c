"""``lossexp ui [--port P]``: the MLflow UI on the project's store, bound to 127.0.0.1.

Prints the URL, then becomes ``mlflow server`` (same process, so Ctrl-C or a signal to it stops
the server). The store is the one ``lossexp train`` writes from this directory
(``outputs/mlflow.db``), ``$MLFLOW_TRACKING_URI`` or ``--uri``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Sequence

from lossexp.reports.command import OneLineParser, run

HOST = "127.0.0.1"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lossexp ui", description="Serve the MLflow UI on the project's store (127.0.0.1).")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (5000)")
    parser.add_argument("--uri", help="backend store URI (default: outputs/mlflow.db under this directory)")
    return parser


def server_command(uri: str, port: int) -> List[str]:
    return [sys.executable, "-m", "mlflow", "server", "--host", HOST, "--port", str(port),
            "--backend-store-uri", uri, "--workers", "1"]


def _ui(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    from lossexp.errors import ConfigError
    from lossexp.tracking import store

    if not 0 < args.port < 65536:
        raise ConfigError(f"Invalid value for --port: expected 1..65535, got {args.port}")
    uri = store.resolve_uri(args.uri, Path(os.getcwd()))
    if uri.startswith(("http://", "https://")):
        raise ConfigError(f"Invalid value for --uri: {uri} is a tracking server already; open it in a browser")
    if store.is_local_sqlite(uri):
        store.sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)
    print(f"lossexp: MLflow UI for {uri} at http://{HOST}:{args.port} (Ctrl-C stops it)", flush=True)
    command = server_command(uri, args.port)
    os.execv(command[0], command)
    return 0  # not reached


def main(argv: Sequence[str]) -> int:
    return run(_ui, argv)
