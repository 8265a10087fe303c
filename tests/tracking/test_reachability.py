"""The tracking store and output directories are checked in seconds, with real sockets and files."""
from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from lossexp.errors import ConfigError
from lossexp.tracking.reachability import check_server, check_tracking, check_writable_dir


class _Health(http.server.BaseHTTPRequestHandler):
    """Answers ``/health`` with the status in the server's ``status`` attribute."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(self.server.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    httpd.status = 200
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _uri(httpd: http.server.ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.mark.parametrize("status", [200, 401, 403])
def test_a_server_that_answers_health_or_wants_credentials_passes(server, status: int) -> None:
    server.status = status
    check_server(_uri(server))


@pytest.mark.parametrize("status", [404, 500])
def test_a_server_that_is_not_mlflow_fails(server, status: int) -> None:
    server.status = status
    with pytest.raises(ConfigError, match=f"HTTP {status}, not an MLflow server"):
        check_server(_uri(server))


def test_a_closed_port_fails_at_once() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        check_server(f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 2
    assert str(info.value).startswith(f"Invalid value for tracking.uri: expected a reachable MLflow tracking "
                                      f"server, got 'http://127.0.0.1:{port}'")


def test_a_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        start = time.monotonic()
        with pytest.raises(ConfigError, match="timed out"):
            check_server(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5)
        assert time.monotonic() - start < 3


def test_environment_uri_is_named_as_such(monkeypatch, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="^Invalid value for MLFLOW_TRACKING_URI"):
        check_tracking(None, tmp_path)


def test_writable_directory_passes_and_is_left_as_it_was(tmp_path: Path) -> None:
    check_writable_dir(tmp_path / "not" / "yet" / "there", "hydra.run.dir")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path, reason", [("/proc/lossexp/run", "/proc"), ("{tmp}/file/run", "is not a directory")])
def test_unwritable_directory_fails(tmp_path: Path, path: str, reason: str) -> None:
    (tmp_path / "file").write_text("x")
    path = path.replace("{tmp}", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        check_writable_dir(Path(path), "hydra.run.dir")
    message = str(info.value)
    assert message.startswith("Invalid value for hydra.run.dir: expected a directory lossexp can create and write")
    assert reason in message and message.endswith(f"got {path!r}")


def test_local_sqlite_store_must_be_writable(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    check_tracking(f"sqlite:///{tmp_path}/store/mlflow.db", tmp_path)
    check_tracking(None, tmp_path)
    with pytest.raises(ConfigError, match="got 'sqlite:////proc/lossexp/mlflow.db'"):
        check_tracking("sqlite:////proc/lossexp/mlflow.db", tmp_path)
