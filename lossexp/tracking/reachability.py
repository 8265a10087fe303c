"""Is the place runs will be written to usable? Checked before TensorFlow loads or a run starts.

MLflow retries an unreachable tracking server for minutes (exponential backoff over several
requests), and a store under a directory that cannot be created fails only once training is
set up. Both are mistakes in the user's input, so they are checked first, cheaply: one HTTP
``GET <uri>/health`` with a short timeout for a server, one throw-away directory for a path.
Nothing here imports MLflow or TensorFlow.
"""
from __future__ import annotations

import os
import shutil
import ssl
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from lossexp.errors import ConfigError, invalid_value

#: seconds to wait for a tracking server's answer; the whole check stays well under 10 s
TIMEOUT_SECONDS = 3.0
#: statuses of a server that is there but wants credentials
AUTH_STATUSES = (401, 403)


def _tls_context() -> Optional[ssl.SSLContext]:
    """The TLS settings MLflow's client would use (``MLFLOW_TRACKING_INSECURE_TLS``, ``…_SERVER_CERT_PATH``)."""
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        return ssl._create_unverified_context()  # noqa: S323 - the user asked MLflow for exactly this
    cert = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cert) if cert else None


def check_server(uri: str, key: str = "tracking.uri", timeout: float = TIMEOUT_SECONDS) -> None:
    """Raise :class:`ConfigError` unless an HTTP server answers at ``uri`` within ``timeout``.

    MLflow's server answers ``/health`` with 200; 401 and 403 (a server behind authentication)
    count as reachable too. A refused connection, an unknown host, a timeout or another status
    (a web server that is not MLflow's) do not.
    """
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=_tls_context()):  # noqa: S310 - the user's URI
            return
    except urllib.error.HTTPError as exc:
        if exc.code in AUTH_STATUSES:
            return
        reason = f"HTTP {exc.code}, not an MLflow server"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
    raise ConfigError(f"Invalid value for {key}: expected a reachable MLflow tracking server, got {uri!r} "
                      f"(GET {url}: {reason}); start one with `mlflow server --host 127.0.0.1` or unset "
                      f"{key} to use the local SQLite store")


def check_writable_dir(path: Path, key: str, got: Optional[str] = None) -> None:
    """Raise :class:`ConfigError` unless directory ``path`` exists or can be created, and can be written.

    The nearest existing ancestor is tested by creating (and removing) a temporary directory in
    it, which also catches what permission bits do not show (``/proc``, read-only mounts).
    ``got`` is the value shown as the bad one (default: ``path``).
    """
    path = Path(path)
    ancestor = path
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    try:
        if not ancestor.is_dir():
            raise NotADirectoryError(f"{ancestor} is not a directory")
        probe = tempfile.mkdtemp(prefix=".lossexp-write-check-", dir=ancestor)
        shutil.rmtree(probe, ignore_errors=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise invalid_value(key, f"a directory lossexp can create and write ({ancestor}: {reason})",
                            got or str(path)) from None


def sqlite_path(uri: str) -> Optional[Path]:
    """The database file of a ``sqlite:///`` URI (None for any other store)."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]) if uri.startswith(prefix) else None


def check_tracking(uri: Optional[str], base_dir: Path) -> None:
    """Check the store runs will go to: ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``base_dir/outputs``.

    Servers (``http``/``https``) must answer; local SQLite stores must be writable. Other schemes
    (databases, Databricks) are left to MLflow.
    """
    key = "tracking.uri" if uri or not os.environ.get("MLFLOW_TRACKING_URI") else "MLFLOW_TRACKING_URI"
    configured = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not configured:
        check_writable_dir(base_dir / "outputs", "tracking.uri (null: outputs/mlflow.db under the working directory)")
    elif configured.startswith(("http://", "https://")):
        check_server(configured, key)
    elif sqlite_path(configured) is not None:
        check_writable_dir(sqlite_path(configured).parent, key, configured)
