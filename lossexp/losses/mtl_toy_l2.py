"""L2 of CAGrad's two-objective toy problem, a loss component of the point ``model=point`` outputs."""
from __future__ import annotations

from lossexp.losses.mtl_toy import ToyObjective
from lossexp.registry import register_component


@register_component("mtl_toy_l2")
class ToyL2(ToyObjective):
    """term = L2(θ) of CAGrad's two-objective toy problem (Liu et al. 2021, Fig. 1), least at (−7, ≈ −8.43);
    θ is the point ``model=point`` outputs (the formula: :mod:`lossexp.losses.mtl_toy`).

    Options: ``weight``.
    """

    index = 1
