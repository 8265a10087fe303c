"""A tracking server as teams run it, started for one test module: a throwaway PostgreSQL cluster as
its backend store and ``mlflow server --app-name basic-auth`` in front, both on 127.0.0.1 only.

PostgreSQL comes from Debian's ``postgresql`` package (``make test-integration`` installs it);
``initdb`` and ``postgres`` refuse to run as root, so as root they run as the package's ``postgres`` user, in a
data directory it owns. The cluster takes password (SCRAM) logins on 127.0.0.1 only, with no
Unix socket outside its own directory. The MLflow server reads its auth settings from a
``basic_auth.ini`` of its own (users database in the test's directory, ``default_permission =
READ``) and the admin's password from ``MLFLOW_AUTH_ADMIN_PASSWORD``, as MLflow documents; the
Flask secret its workers share from ``MLFLOW_FLASK_SERVER_SECRET_KEY``.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from conftest import lossexp_env
from integration_helpers import free_port, stop_group, wait_http

ADMIN = "admin"
#: the cluster's superuser, owner of the MLflow database
DB_USER = "mlflow"


@dataclass(frozen=True)
class Server:
    uri: str
    admin_password: str
    backend_uri: str
    root: Path


def postgres_bindir() -> Optional[Path]:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb``, or ``pg_config --bindir``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        return bindir if (bindir / "initdb").exists() else None
    return None


def _cluster_user() -> Optional[str]:
    """Who runs the cluster: ``postgres`` when we are root (initdb refuses root), else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    pwd.getpwnam("postgres")  # KeyError: the postgresql package was not installed
    return "postgres"


@contextlib.contextmanager
def postgres_cluster(bindir: Path) -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1 with a database ``mlflow``; yields its SQLAlchemy URI."""
    user = _cluster_user()
    home = Path(tempfile.mkdtemp(prefix="lossexp-pg-"))  # under /tmp: reachable by the postgres user
    data, password = home / "data", secrets.token_urlsafe(16)
    (home / "pwfile").write_text(password + "\n")
    as_user = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        os.chown(home / "pwfile", entry.pw_uid, entry.pw_gid)
        as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(home)}
    process = None
    try:
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", DB_USER, f"--pwfile={home / 'pwfile'}",
                        "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions"],
                       cwd=home, env=env, capture_output=True, text=True, check=True, timeout=120, **as_user)
        port = free_port()
        log = open(home / "postgres.log", "w")
        process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
             "-c", f"unix_socket_directories={home}", "-c", "fsync=off", "-c", "max_connections=200"],
            cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **as_user)
        log.close()
        _create_database(port, password, process, home)
        yield f"postgresql://{DB_USER}:{password}@127.0.0.1:{port}/mlflow"
    finally:
        if process is not None:
            stop_group(process, signal.SIGINT, timeout=30)  # fast shutdown: clients are disconnected
        shutil.rmtree(home, ignore_errors=True)


def _create_database(port: int, password: str, process: subprocess.Popen, home: Path, timeout: float = 60) -> None:
    import psycopg  # SQLAlchemy 2's driver for postgresql:// URIs

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited with {process.returncode}: {(home / 'postgres.log').read_text()}")
        try:
            connection = psycopg.connect(host="127.0.0.1", port=port, user=DB_USER, password=password,
                                         dbname="postgres", connect_timeout=2, autocommit=True)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    with connection:
        connection.execute("CREATE DATABASE mlflow")


@contextlib.contextmanager
def basic_auth_server(backend_uri: str, root: Path, workers: int = 2) -> Iterator[Server]:
    """``mlflow server --app-name basic-auth`` on 127.0.0.1 over ``backend_uri``, artifacts served by it."""
    root.mkdir(parents=True, exist_ok=True)
    ini = root / "basic_auth.ini"
    ini.write_text("[mlflow]\ndefault_permission = READ\n"
                   f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
                   f"admin_username = {ADMIN}\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                   # a password check (PBKDF2) per request dominates a busy server's time; MLflow's own cache
                   "auth_cache_ttl_seconds = 60\n")
    admin_password = secrets.token_urlsafe(16)
    port = free_port()
    log = open(root / "server.log", "w")
    # the Flask secret signs the UI's CSRF tokens; all workers must share it
    env = lossexp_env(MLFLOW_AUTH_CONFIG_PATH=str(ini), MLFLOW_AUTH_ADMIN_PASSWORD=admin_password,
                      MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16))
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--backend-store-uri", backend_uri,
         "--serve-artifacts", "--artifacts-destination", str(root / "artifacts")],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process, timeout=120)
        yield Server(f"http://127.0.0.1:{port}", admin_password, backend_uri, root)
    finally:
        stop_group(process)
