"""The sweep's parent run is created before any job runs; when it cannot be, the sweep ends there with
one line (Hydra itself would only warn about the callback and run every job without its parent)."""
from __future__ import annotations

import http.server
import json
from typing import Iterator

import pytest

from conftest import local_http_server


class _RefusingServer(http.server.BaseHTTPRequestHandler):
    """``/health`` answers; every MLflow API call gets 400 INVALID_PARAMETER_VALUE (MLflow does not retry it)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requests.append(self.path)
        status, body = (200, b"OK") if self.path == "/health" else (
            400, json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": "stand-in refuses"}).encode())
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[http.server.ThreadingHTTPServer]:
    with local_http_server(_RefusingServer) as server:
        yield server


def test_a_parent_that_cannot_be_created_ends_the_sweep_before_any_job(run_cli, refusing_server) -> None:
    uri = f"http://127.0.0.1:{refusing_server.server_address[1]}"
    result = run_cli("train", "-m", "model=mlp", "data=regression", "loss=hist_avg", f"tracking.uri={uri}", timeout=120)
    assert result.returncode == 1, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("lossexp: ")]
    assert lines == [f"lossexp: error: the sweep's parent run could not be created in {uri}: RestException: "
                     "INVALID_PARAMETER_VALUE: stand-in refuses"], result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "recorded in" not in result.stdout
    assert not any("runs/create" in path for path in refusing_server.requests)
