"""The loss's own trained weights are left out of the optimizer's weight decay.

A Keras optimizer given ``weight_decay`` (AdamW's 0.004 by default, any optimizer's option) shrinks
every variable it trains towards zero unless told otherwise (``exclude_from_weight_decay``). Weight
decay is a prior on the network's parameters; a component's trainable weight (``coef``, a
``softplus`` or ``uncertainty`` weight) or a weighting method's trained state is a coefficient of the
loss, whose decay moves the balance of the loss itself: under AdamW (lr 0.01, ``weight_decay`` 0.1,
130 steps) a ``softplus`` weight ended at 0.027 where Adam, and AdamW with it left out, ended at
0.019; an ``uncertainty`` log-variance at 1.46 against 1.73. :func:`spare` leaves those variables
out, keeping whatever the user's optimizer already leaves out (``exclude_from_weight_decay(var_names=
["bias"])``: Keras' own call would replace that list, so the set it keeps is added to).
"""
from __future__ import annotations

from typing import Any, Sequence


def spare(optimizer: Any, variables: Sequence[Any]) -> None:
    """Leave ``variables`` out of ``optimizer``'s weight decay (its inner one's, for a loss-scaling
    optimizer); nothing for an optimizer without weight decay, or one built already, which Keras no
    longer lets change what it decays."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not variables or not getattr(inner, "weight_decay", None) or getattr(inner, "built", True) \
            or not hasattr(inner, "_use_weight_decay"):
        return
    # Keras' exclude_from_weight_decay(var_list=…) would drop the names the user excluded: add to its set
    excluded = set(getattr(inner, "_exclude_from_weight_decay", set()))
    inner._exclude_from_weight_decay = excluded | {inner._var_key(variable) for variable in variables}
    inner._exclude_from_weight_decay_cache = {}
