"""The tracking store and output directories are checked in seconds, with real sockets and files."""
from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from lossexp.errors import ConfigError
from lossexp.tracking.reachability import (CURRENT_USER, EXPERIMENT_BY_NAME, USER_PERMISSION, check_access,
                                           check_server, check_tracking, check_writable_dir)


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


# --- a server behind MLflow's authentication -----------------------------------------------------------
class _AuthServer(http.server.BaseHTTPRequestHandler):
    """``/health`` for anyone; the API for ``alice:secret`` only (401 otherwise); ``experiment`` owned by
    someone else, on which alice has the permission in the server's ``permission`` attribute."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/health":
            return self._reply(200, "OK")
        if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"alice:secret").decode():
            return self._reply(401, "You are not authenticated.")
        if self.path.startswith(EXPERIMENT_BY_NAME):
            return self._reply(200, {"experiment": {"experiment_id": "7", "name": "theirs"}})
        if self.path == CURRENT_USER:
            return self._reply(200, {"user": {"username": "alice", "is_admin": False}})
        if self.path.startswith(USER_PERMISSION) and "username=alice" in self.path and "resource_id=7" in self.path:
            return self._reply(200, {"allowed": False, "permission": self.server.permission})
        return self._reply(404, {"error_code": "ENDPOINT_NOT_FOUND"})

    def _reply(self, status: int, body: object) -> None:
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body.encode() if isinstance(body, str) else json.dumps(body).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def auth_server(monkeypatch) -> Iterator[http.server.ThreadingHTTPServer]:
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                 "MLFLOW_TRACKING_AUTH"):
        monkeypatch.delenv(name, raising=False)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthServer)
    httpd.permission = "READ"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_server_that_wants_credentials_is_one_line_naming_the_401(auth_server, tmp_path: Path) -> None:
    uri = _uri(auth_server)
    with pytest.raises(ConfigError) as info:
        check_tracking(uri, tmp_path, "lossexp")
    assert str(info.value) == (f"Invalid value for tracking.uri: expected an MLflow tracking server that accepts "
                               f"your credentials, got {uri!r} (HTTP 401 Unauthorized: it requires a login; set "
                               "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)")


def test_wrong_credentials_are_named(auth_server, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "guess")
    with pytest.raises(ConfigError, match="HTTP 401 Unauthorized for MLFLOW_TRACKING_USERNAME 'alice': wrong"):
        check_access(_uri(auth_server), "lossexp")


@pytest.mark.parametrize("permission, writable", [("READ", False), ("USE", False), ("EDIT", True), ("MANAGE", True)])
def test_an_experiment_the_user_may_not_write_to_is_refused(auth_server, monkeypatch, permission, writable) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "secret")
    auth_server.permission = permission
    check_access(_uri(auth_server))  # credentials accepted, no experiment named: nothing more to check
    if writable:
        check_access(_uri(auth_server), "theirs")
        return
    with pytest.raises(ConfigError) as info:
        check_access(_uri(auth_server), "theirs")
    assert str(info.value).startswith("Invalid value for tracking.experiment: expected an experiment user 'alice' "
                                      f"may create runs in on {_uri(auth_server)}, got 'theirs' (MLflow permission "
                                      f"{permission}; runs need EDIT or MANAGE")
