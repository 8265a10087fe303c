"""Where a run is seen in the MLflow UI: the URLs lossexp prints.

MLflow 3's UI opens an experiment on its GenAI overview (traces, tokens, cost); lossexp's runs are
model training, so every link carries ``workflowType=machine_learning``, which lands on the runs
table, and a run's link opens its "Model metrics" tab (the chart view). A local store is served by
``lossexp ui`` at ``http://127.0.0.1:<port>``; a tracking server serves its own UI at its URI.
"""
from __future__ import annotations

HOST = "127.0.0.1"
DEFAULT_PORT = 5000
VIEW = "workflowType=machine_learning"


def local_base(port: int = DEFAULT_PORT) -> str:
    return f"http://{HOST}:{port}"


def ui_base(tracking_uri: str, port: int = DEFAULT_PORT) -> str:
    """The UI's address for a store: a tracking server's own URI, else ``lossexp ui``'s."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return local_base(port)


def runs_url(base: str, experiment_id: str) -> str:
    """The experiment's runs table in the model-training view."""
    return f"{base}/#/experiments/{experiment_id}/runs?{VIEW}"


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    """One run's chart view ("Model metrics")."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}/model-metrics?{VIEW}"
