"""Every metric name lossexp records: the one place they are made (the tables of docs/tracking.md are the contract).

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
``weight/var/<c>/<v>``    c's own trained variable v (``.norm``: a tensor's) ``weight/var/<c>``
``weight/state/<c>/<v>``  c's own non-trainable state v (``.norm``: a tensor's) ``weight/state/<c>``
``weight/<method>/<t>``   a weighting method's weight of task t          ``weight/<method>``
``weight_ema/…``          (``use_ema``) ``weight/…`` in the optimizer's EMA, at the end  ``weight_ema/…``
``weight_drift/<stat>/<layer>``  relative weight drift of a layer       ``weight_drift/<stat>`` (3)
``weight_grad/<t>/<stat>``  gradient diagnostics of task t (norm, …)     ``weight_grad/<t>``
``weight_grad/<t>/<layer>.<stat>``  the same on one layer              ``weight_grad/<t>``
                          (``backbone.hidden``: a nested model's layer)
``weight_grad/conflicts``, ``weight_grad/norm``  conflicting pairs, ‖update‖  ``weight_grad``
``weight_grad/<p>/<t>/<stat>``  a player's part t, in its step (norm, cos_update)  ``weight_grad/<p>/<t>``
``weight_grad/<p>/norm``  ‖player p's update‖ (a GAN; a regime's own step)  ``weight_grad/<p>``
``loss``, ``val_loss``, ``accuracy``, ``objective``, …  totals and task metric   Model metrics
``ablation/delta/<c>``    (an ablation's parent) objective change without c, mean over seeds  ``ablation/delta``
``ablation/delta_std/<c>``  its standard deviation over the seeds     ``ablation/delta_std``
``ablation/objective/whole``  the whole composition's mean objective   ``ablation/objective``
========================  =============================================  ===================

A task t is ``task`` (the task loss; ``task.<output>`` for each output with ``task.split_outputs``), a
component's name or ``other``. (``drift/<layer>/<stat>``
made three sections per layer, before the losses; ``coef/<c>`` sorted before ``loss``. Gradient
diagnostics are ``weight_grad/…``, not ``grad/…``, for the same reason: ``grad`` sorts before
``loss``, and the chart view must open on the loss breakdown; beside the drift they describe the
weights' motion.)
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

TASK = "task"
LOSS = "loss"
VAL_PREFIX = "val_"
#: the three drift statistics (see :mod:`lossexp.training.drift`)
DRIFT_STATS = ("from_init", "per_step", "from_avg")
DRIFT_PREFIX = "weight_drift/"
GRAD_PREFIX = "weight_grad/"
#: the gradient statistics of one task (see :mod:`lossexp.training.gradient_diagnostics`)
GRAD_STATS = ("norm", "share")
#: the statistics of one part of a player's update, taken in its step (:mod:`lossexp.training.step_gradients`)
STEP_GRAD_STATS = ("norm", "cos_update")
ABLATION_PREFIX = "ablation/"
COEF_PREFIX = "weight/coef/"
WEIGHT_PREFIX = "weight/"
EMA_PREFIX = "weight_ema/"
#: seconds from process start to the end of the first compiled call (no "/": in "Model metrics", not a section)
STARTUP = "startup_seconds"
#: the optimizer's learning rate (Keras' learning-rate callbacks' name for it)
LEARNING_RATE = "learning_rate"


def task_output(output: str) -> str:
    """``task.<output>``: the part of the loss that is one output's task loss (``task.split_outputs``)."""
    return f"{TASK}.{output}"


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


def ema(key: str) -> str:
    """``weight_ema/…`` of ``weight/…`` (``weight/coef/<c>`` → ``weight_ema/coef/<c>``): with an optimizer's
    ``use_ema``, the value in its moving average of the weights, which Keras puts into the model as training
    ends (a section after ``loss``, beside ``weight_drift`` and ``weight_grad``)."""
    return EMA_PREFIX + key[len(WEIGHT_PREFIX):] if key.startswith(WEIGHT_PREFIX) else EMA_PREFIX + key


def component_variable(component: str, variable: str, tensor: bool = False) -> str:
    """``weight/var/<component>/<variable>``: a trainable variable of the component's own (not its weight's),
    a scalar's value or, with ``tensor``, a tensor's Frobenius norm (``….norm``)."""
    return f"{WEIGHT_PREFIX}var/{component}/{variable}" + (".norm" if tensor else "")


def variable_labels(owner: str, variables: Sequence[Any]) -> List[str]:
    """The ``<v>`` of each of a component's ``variables`` in ``weight/var/<c>/<v>`` or ``weight/state/<c>/<v>``
    (``owner``: the component's name): its name, unless another of them has that name too — the kernels of a
    projection head's two Dense layers, which would write one key — then its Keras path below the component
    (``dense_1/kernel``), numbered from 1 (``seen_1``, ``seen_2``) where even that is shared."""
    def below(path: str) -> str:
        parts = path.split("/")
        return "/".join(parts[parts.index(owner) + 1:]) if owner in parts[:-1] else path

    names = [v.name for v in variables]
    labels = [v.name if names.count(v.name) == 1 else below(v.path) for v in variables]
    seen: Dict[str, int] = {}
    numbered = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        numbered.append(label if labels.count(label) == 1 else f"{label}_{seen[label]}")
    return numbered


def component_state(component: str, variable: str, tensor: bool = False) -> str:
    """``weight/state/<component>/<variable>``: a non-trainable variable of the component's own (class centres, a
    queue, a multiplier moved by ascent), a scalar's value or, with ``tensor``, a tensor's Frobenius norm (``….norm``)."""
    return f"{WEIGHT_PREFIX}state/{component}/{variable}" + (".norm" if tensor else "")


def is_component_state(name: str) -> bool:
    return name.startswith(f"{WEIGHT_PREFIX}state/")


def learning_rate(player: str | None = None) -> str:
    """``learning_rate``, or ``learning_rate/<player>`` for a model of one optimizer per player (a GAN)."""
    return LEARNING_RATE if player is None else f"{LEARNING_RATE}/{player}"


def drift(stat: str, layer: str) -> str:
    """``weight_drift/<stat>/<layer>``, ``stat`` one of :data:`DRIFT_STATS`."""
    return f"{DRIFT_PREFIX}{stat}/{layer}"


def method_weight(method: str, task: str) -> str:
    """``weight/<method>/<task>``: the weight a weighting method gave task ``task`` at the last step."""
    return f"{WEIGHT_PREFIX}{method}/{task}"


def gradient(task: str, stat: str, layer: str | None = None) -> str:
    """``weight_grad/<task>/<stat>`` (all shared weights) or ``weight_grad/<task>/<layer>.<stat>`` (one
    layer's: in the task's section, so a run has one section per task; a layer of a nested model,
    ``backbone/hidden``, is ``backbone.hidden`` there)."""
    return f"{GRAD_PREFIX}{task}/{_scope(layer)}{stat}"


def _scope(layer: str | None) -> str:
    """``<layer>.`` before a layer's statistic, a nested layer's path joined by dots; nothing for all weights."""
    return layer.replace("/", ".") + "." if layer else ""


def gradient_cosine(task: str, other: str, layer: str | None = None) -> str:
    """``weight_grad/<task>/cos_<other>``: the cosine between two tasks' gradients (``cos_task``: with the task loss's)."""
    return gradient(task, f"cos_{other}", layer)


def conflicts(layer: str | None = None) -> str:
    """``weight_grad/conflicts`` (``weight_grad/<layer>.conflicts``): pairs of tasks whose gradients have a
    negative cosine."""
    return f"{GRAD_PREFIX}{_scope(layer)}conflicts"


def update_norm() -> str:
    """``weight_grad/norm``: the norm of the update direction Σ αᵢ∇Lᵢ."""
    return f"{GRAD_PREFIX}norm"


def player_gradient(player: str, part: str, stat: str) -> str:
    """``weight_grad/<player>/<part>/<stat>``: the supervised ``weight_grad/<part>/<stat>`` of one player (a GAN's
    generator, a regime's own optimizer's share of the weights), a section per part of its loss."""
    return f"{GRAD_PREFIX}{player}/{part}/{stat}"


def player_update_norm(player: str) -> str:
    """``weight_grad/<player>/norm``: the norm of the player's update (the supervised ``weight_grad/norm``)."""
    return f"{GRAD_PREFIX}{player}/norm"


def ablation(stat: str, component: str) -> str:
    """``ablation/<stat>/<component>``: a leave-one-out sweep's change of the objective without ``component``."""
    return f"{ABLATION_PREFIX}{stat}/{component}"


def is_gradient(name: str) -> bool:
    return name.startswith(GRAD_PREFIX)


def gradient_parts(name: str) -> tuple[str, str | None, str] | None:
    """(task, layer or None, stat) of a name :func:`gradient` made; None for any other name."""
    parts = name[len(GRAD_PREFIX):].split("/") if is_gradient(name) else []
    if len(parts) != 2:
        return None
    layer, _, stat = parts[1].rpartition(".")
    return parts[0], layer or None, stat


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
