"""L1 of CAGrad's two-objective toy problem, a loss component of the point ``model=point`` outputs."""
from __future__ import annotations

from lossexp.losses.mtl_toy import ToyObjective
from lossexp.registry import register_component


@register_component("mtl_toy_l1")
class ToyL1(ToyObjective):
    """term = L1(θ) of CAGrad's two-objective toy problem (Liu et al. 2021, Fig. 1), least at (7, ≈ −8.43);
    θ is the point ``model=point`` outputs (the formula: :mod:`lossexp.losses.mtl_toy`).

    Options: ``weight`` (Nash-MTL's variant of the toy scales L₁ by 0.1).
    """

    index = 0
