"""MLflow: the store and run lifecycle (``store``), the Keras callback that records a run
(``callback``) and the plots logged with it (``plots``)."""
