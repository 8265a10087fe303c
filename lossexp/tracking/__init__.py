"""MLflow: the store and run lifecycle (``store``, ``run``), the Keras callback that records a run
(``callback``) and the plots logged with it (``plots``); what stops a run early and why (``guard``:
non-finite loss, SIGINT / SIGTERM; ``divergence``), the heartbeat of a running run and the reaper
of runs whose process died (``heartbeat``, ``reaper``), and ``--from-run`` (``from_run``)."""
