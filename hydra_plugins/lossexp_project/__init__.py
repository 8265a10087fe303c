"""Hydra plugin: the user's project ``conf/`` on Hydra's search path (see :mod:`lossexp.project`)."""
