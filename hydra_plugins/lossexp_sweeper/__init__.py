"""lossexp's Hydra sweeper on Optuna >= 4 (``hydra/sweeper=lossexp_optuna``); see optuna_sweeper.py."""
