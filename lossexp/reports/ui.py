"""``lossexp ui [--port P]``: the MLflow UI on the project's store, bound to 127.0.0.1.

Prints the URL, and the address of the experiment's runs in the model-training view (MLflow 3
otherwise lands on its GenAI overview: traces, tokens, cost), then becomes ``mlflow server``
(same process, so Ctrl-C or a signal to it stops the server), without its job runner (GenAI
scorers' jobs, whose consumers printed a traceback each at Ctrl-C) and its web server's INFO lines.
The store is the one ``lossexp train`` writes from this directory (``outputs/mlflow.db``),
``$MLFLOW_TRACKING_URI`` or ``--uri``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from lossexp.reports.command import OneLineParser, run

HOST = "127.0.0.1"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lossexp ui", description="Serve the MLflow UI on the project's store (127.0.0.1).")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (5000)")
    parser.add_argument("--uri", help="backend store URI (default: outputs/mlflow.db under this directory)")
    parser.add_argument("--experiment", "-e", metavar="E", default=os.environ.get("MLFLOW_EXPERIMENT_NAME", "lossexp"),
                        help="the experiment whose runs the printed address opens ($MLFLOW_EXPERIMENT_NAME, else lossexp)")
    return parser


def server_command(uri: str, port: int) -> List[str]:
    """``mlflow server`` on 127.0.0.1, its web server's log at warnings (no INFO line per start and stop)."""
    return [sys.executable, "-m", "mlflow", "server", "--host", HOST, "--port", str(port),
            "--backend-store-uri", uri, "--workers", "1", "--uvicorn-opts", "--log-level warning"]


#: the server's environment, where the user set none of these: no job runner (GenAI scorers' jobs; its
#: huey consumers printed a traceback each at Ctrl-C, 400 lines), no deprecation warning of a library's
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "PYTHONWARNINGS": "ignore:::mlflow.server.fastapi_app"}


def _ui(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    from lossexp.errors import ConfigError
    from lossexp.tracking import store, ui_links

    if not 0 < args.port < 65536:
        raise ConfigError(f"Invalid value for --port: expected 1..65535, got {args.port}")
    uri = store.resolve_uri(args.uri, Path(os.getcwd()))
    if uri.startswith(("http://", "https://")):
        raise ConfigError(f"Invalid value for --uri: {uri} is a tracking server already; open it in a browser")
    if store.is_local_sqlite(uri) and store.sqlite_path(uri).exists():
        from lossexp.tracking import store_file

        store_file.check(store.sqlite_path(uri), uri, store_file.key(args.uri))
    elif store.is_local_sqlite(uri):
        store.sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)
    base = ui_links.local_base(args.port)
    print(f"lossexp: MLflow UI for {uri} at {base} (Ctrl-C stops it)", flush=True)
    experiment_id = _experiment_id(uri, args.experiment)
    if experiment_id is not None:
        print(f"lossexp: runs of {args.experiment!r}: {ui_links.runs_url(base, experiment_id)}", flush=True)
    command = server_command(uri, args.port)
    os.execve(command[0], command, {**SERVER_ENV, **os.environ})
    return 0  # not reached


def _experiment_id(uri: str, name: str) -> Optional[str]:
    """The id of experiment ``name`` in the store at ``uri`` (None: no such store or experiment yet)."""
    from lossexp.tracking import store

    if store.is_local_sqlite(uri) and not store.sqlite_path(uri).exists():
        return None
    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    return experiment.experiment_id if experiment is not None else None


def main(argv: Sequence[str]) -> int:
    return run(_ui, argv)
