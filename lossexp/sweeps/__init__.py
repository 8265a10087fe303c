"""A Hydra multirun as one coherent MLflow record: a parent run, one child run per job.

``callback`` (a Hydra callback, launching process) creates the store, the experiment and the
parent run before any job starts and closes the parent when the sweep ends; ``job`` prepares each
job's process (TensorFlow threads, no stale MLflow run) and tags its run as a child; ``naming``
names children from their overrides; ``objective`` is the value a job returns to the sweeper.
Nothing here imports TensorFlow at module level.
"""
import warnings

# conf/hydra/launcher/joblib.yaml deliberately shadows the joblib plugin's own config (n_jobs: 2, not
# -1) and is checked against its schema; Hydra warns about that in every process that composes it.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/joblib' is validated against ConfigStore schema")
