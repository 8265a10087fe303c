"""Is the place runs will be written to usable? Checked before TensorFlow loads or a run starts.

MLflow retries an unreachable tracking server for minutes (exponential backoff over several
requests), and a store under a directory that cannot be created fails only once training is
set up. Both are mistakes in the user's input, so they are checked first, cheaply: one HTTP
``GET <uri>/health`` with a short timeout for a server, one throw-away directory for a path.

A server behind MLflow's authentication (``mlflow server --app-name basic-auth``) answers
``/health`` to anyone, so a second, read-only request with the credentials MLflow's client
would send (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, or
``MLFLOW_TRACKING_TOKEN``) looks up the run's experiment: 401 (no or wrong credentials) and 403
are one-line errors. When the experiment exists and belongs to someone else, the user's
permission on it is read from the server (MLflow's permission model: new runs need EDIT or
MANAGE), so a run that the server would refuse fails here, not after TensorFlow has loaded.
Nothing here imports MLflow or TensorFlow.
"""
from __future__ import annotations

import base64
import errno
import json
import os
import shutil
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from lossexp.errors import ConfigError, invalid_value
from lossexp.tracking import store_file

#: seconds to wait for a tracking server's answer; the whole check stays well under 10 s
TIMEOUT_SECONDS = 3.0
#: statuses of a server that is there but wants credentials
AUTH_STATUSES = (401, 403)
#: read-only MLflow REST endpoints the access check uses
EXPERIMENT_BY_NAME = "/api/2.0/mlflow/experiments/get-by-name"
SEARCH_EXPERIMENTS = "/api/2.0/mlflow/experiments/search"
CURRENT_USER = "/api/2.0/mlflow/users/current"
USER_PERMISSION = "/api/3.0/mlflow/users/permissions/get"
#: MLflow permissions that may create runs in an experiment
WRITE_PERMISSIONS = ("EDIT", "MANAGE")


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


def _credentials() -> Tuple[Dict[str, str], Optional[str], str]:
    """(HTTP headers, user name or None, how they were given) as MLflow's client would send them."""
    username, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if username and password:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}, username, f"MLFLOW_TRACKING_USERNAME {username!r}"
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}, None, "MLFLOW_TRACKING_TOKEN"
    return {}, None, ""


def _get_json(url: str, headers: Dict[str, str], timeout: float) -> Tuple[int, Any]:
    """(HTTP status, JSON body or None) of ``GET url``; status 0 if no answer came (left to MLflow)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_tls_context()) as response:  # noqa: S310
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(body or b"null")
    except ValueError:
        return status, None


def check_usable_server(uri: str, key: str = "tracking.uri", experiment: Optional[str] = None) -> None:
    """The server at ``uri`` answers (:func:`check_server`) and takes the user's credentials, and runs in
    ``experiment`` when given (:func:`check_access`): one line in seconds, where MLflow's client retries a
    silent server for minutes."""
    check_server(uri, key)
    check_access(uri, experiment, key)


def check_access(uri: str, experiment: Optional[str] = None, key: str = "tracking.uri",
                 timeout: float = TIMEOUT_SECONDS) -> None:
    """Raise :class:`ConfigError` if the server at ``uri`` refuses the user's credentials (401, 403),
    or if ``experiment`` exists there and the user may not create runs in it.

    A server without authentication, and credentials MLflow's client sends in ways this check
    does not reproduce (``MLFLOW_TRACKING_AUTH`` plugins, AWS SigV4), pass untested.
    """
    if os.environ.get("MLFLOW_TRACKING_AUTH") or os.environ.get("MLFLOW_TRACKING_AWS_SIGV4", "").lower() == "true":
        return
    headers, username, given = _credentials()
    base = uri.rstrip("/")
    if experiment is None:
        url = f"{base}{SEARCH_EXPERIMENTS}?max_results=1"
    else:
        url = f"{base}{EXPERIMENT_BY_NAME}?{urllib.parse.urlencode({'experiment_name': experiment})}"
    status, body = _get_json(url, headers, timeout)
    if status == 401:
        reason = (f"HTTP 401 Unauthorized for {given}: wrong user name, password or token" if given else
                  "HTTP 401 Unauthorized: it requires a login; set MLFLOW_TRACKING_USERNAME and "
                  "MLFLOW_TRACKING_PASSWORD")
        raise ConfigError(f"Invalid value for {key}: expected an MLflow tracking server that accepts your "
                          f"credentials, got {uri!r} ({reason})")
    who = f"user {username!r}" if username else "you"
    if status == 403:
        what = f"experiment {experiment!r}" if experiment else "its experiments"
        raise ConfigError(f"Invalid value for {key}: expected a tracking server where {who} may read {what}, "
                          f"got {uri!r} (HTTP 403 Forbidden)")
    experiment_id = (body.get("experiment") or {}).get("experiment_id") if isinstance(body, dict) else None
    if status == 200 and experiment_id is not None and username is not None:
        _check_write_permission(base, experiment, experiment_id, username, headers, timeout)
    # else: no such experiment yet (the run creates it, as its owner), or nothing more to learn


def _check_write_permission(base: str, experiment: str, experiment_id: str, username: str,
                            headers: Dict[str, str], timeout: float) -> None:
    """MLflow's auth app knows the user's permission on the experiment; runs need EDIT or MANAGE."""
    status, me = _get_json(f"{base}{CURRENT_USER}", headers, timeout)
    if status != 200 or not isinstance(me, dict) or (me.get("user") or {}).get("is_admin"):
        return  # a server without MLflow's auth app, or an admin: may write anywhere
    query = urllib.parse.urlencode({"username": username, "resource_type": "experiment", "resource_id": experiment_id})
    status, granted = _get_json(f"{base}{USER_PERMISSION}?{query}", headers, timeout)
    permission = granted.get("permission") if status == 200 and isinstance(granted, dict) else None
    if permission is not None and permission not in WRITE_PERMISSIONS:
        raise ConfigError(f"Invalid value for tracking.experiment: expected an experiment user {username!r} may "
                          f"create runs in on {base}, got {experiment!r} (MLflow permission {permission}; runs need "
                          f"{' or '.join(WRITE_PERMISSIONS)}: ask its owner or an admin, or set another "
                          "tracking.experiment)")


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
        if exc.errno == errno.ENOENT and ancestor.is_dir():  # /proc's answer to mkdir: it exists, takes nothing
            reason = "no directory can be created in it"
        raise invalid_value(key, f"a directory lossexp can create and write ({ancestor}: {reason})",
                            got or str(path)) from None


def sqlite_path(uri: str) -> Optional[Path]:
    """The database file of a ``sqlite:///`` URI (None for any other store)."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]) if uri.startswith(prefix) else None


def check_tracking(uri: Optional[str], base_dir: Path, experiment: Optional[str] = None) -> None:
    """Check the store runs will go to: ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``base_dir/outputs``.

    Servers (``http``/``https``) must answer and accept the user's credentials (and, given the
    run's ``experiment``, let the user create runs in it); local SQLite stores must be writable and,
    when the file exists, an MLflow store (MLflow would migrate another tool's database into its own
    schema, and a file that is no database was SQLAlchemy's traceback).
    Other schemes (databases, Databricks) are left to MLflow.
    """
    key = "tracking.uri" if uri or not os.environ.get("MLFLOW_TRACKING_URI") else "MLFLOW_TRACKING_URI"
    configured = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not configured:
        key = "tracking.uri (null: outputs/mlflow.db under the working directory)"
        check_writable_dir(base_dir / "outputs", key)
        store_file.check(base_dir / "outputs" / "mlflow.db", "outputs/mlflow.db", key)
    elif configured.startswith(("http://", "https://")):
        check_usable_server(configured, key, experiment)
    elif sqlite_path(configured) is not None:
        database = base_dir / sqlite_path(configured)  # a relative path is the working directory's
        check_writable_dir(database.parent, key, configured)
        store_file.check(database, configured, key)
