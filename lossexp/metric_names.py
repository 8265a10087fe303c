"""Every metric name lossexp records: the one place they are made (README's table is the contract).

The MLflow UI groups a run's charts into sections by the part of the name before the last ``/``
and orders the sections alphabetically (names without ``/`` go to "Model metrics", system metrics
last). The names are chosen so that the loss breakdown comes first and there are few sections:

========================  =============================================  ===================
name                      meaning                                        UI section
========================  =============================================  ===================
``loss/task``, ``loss/<c>``   task loss, component c's weighted contribution  ``loss``
``term/<c>``              component c's unweighted term                  ``term``
``val_loss/…``, ``val_term/…``  the same on the validation split          ``val_loss``, ``val_term``
``weight/<c>``            c's effective weight (scheduled or trainable)  ``weight``
``weight/coef/<c>``       c's trained coefficient ``a``                  ``weight/coef``
``weight_drift/<stat>/<layer>``  relative weight drift of a layer       ``weight_drift/<stat>`` (3)
``loss``, ``val_loss``, ``accuracy``, ``objective``, …  totals and task metric   Model metrics
========================  =============================================  ===================

(``drift/<layer>/<stat>`` made three sections per layer, before the losses; ``coef/<c>`` sorted
before ``loss``.)
"""
from __future__ import annotations

TASK = "task"
LOSS = "loss"
VAL_PREFIX = "val_"
#: the three drift statistics (see :mod:`lossexp.training.drift`)
DRIFT_STATS = ("from_init", "per_step", "from_avg")
DRIFT_PREFIX = "weight_drift/"
COEF_PREFIX = "weight/coef/"
WEIGHT_PREFIX = "weight/"
#: seconds from process start to the end of the first compiled call (no "/": in "Model metrics", not a section)
STARTUP = "startup_seconds"


def loss(part: str) -> str:
    """``loss/task`` or ``loss/<component>``: a part of the total training loss."""
    return f"{LOSS}/{part}"


def term(component: str) -> str:
    """``term/<component>``: the component's unweighted term."""
    return f"term/{component}"


def validation(name: str) -> str:
    """The validation twin of a training metric (Keras' ``val_`` prefix)."""
    return VAL_PREFIX + name


def weight(component: str) -> str:
    """``weight/<component>``: the multiplier in force (scheduled or trainable)."""
    return WEIGHT_PREFIX + component


def coef(component: str) -> str:
    """``weight/coef/<component>``: the trained coefficient (raw ``a``; ``s`` for ``uncertainty``)."""
    return COEF_PREFIX + component


def drift(stat: str, layer: str) -> str:
    """``weight_drift/<stat>/<layer>``, ``stat`` one of :data:`DRIFT_STATS`."""
    return f"{DRIFT_PREFIX}{stat}/{layer}"


def is_loss_part(name: str) -> bool:
    """``loss/<part>`` or ``val_loss/<part>`` with one level (not a GAN player's ``loss/g/adversarial``)."""
    bare = name[len(VAL_PREFIX):] if name.startswith(VAL_PREFIX) else name
    return bare.startswith(LOSS + "/") and bare.count("/") == 1


def is_coef(name: str) -> bool:
    return name.startswith(COEF_PREFIX)


def is_drift(name: str, stat: str | None = None) -> bool:
    return name.startswith(DRIFT_PREFIX + (f"{stat}/" if stat else ""))


def section(name: str) -> str:
    """The MLflow UI's chart section of a metric: the part before the last ``/`` (else "Model metrics")."""
    return name.rsplit("/", 1)[0] if "/" in name else "Model metrics"
