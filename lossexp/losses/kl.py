"""The VAE's KL term (R2): KL(q(z|x) ‖ N(0, I)) from the encoder's ``z_mean`` and ``z_log_var``."""
from __future__ import annotations

from typing import Any, List

import keras
from keras import ops

from lossexp.errors import ConfigError
from lossexp.losses.base import LossComponent, LossContext, LossTap
from lossexp.registry import register_component


@register_component("kl")
class KLDivergence(LossComponent):
    """term = mean over the batch of −½ Σ_latent (1 + log σ² − μ² − σ²), the KL divergence of the
    encoder's Gaussian q(z|x) = N(μ, σ²) from the prior N(0, I) (Kingma & Welling 2014).

    μ and log σ² are the outputs of the layers ``mean_layer`` (default ``z_mean``) and
    ``log_var_layer`` (default ``z_log_var``) of ``model=vae``, read through the composed model's
    multi-output view (no closure over symbolic tensors). Summed over the latent dimensions like
    the VAE's reconstruction loss is summed over the pixels, so ``weight: 1`` is the ELBO.

    The weight (``kl_weight`` in the seed) is usually annealed; any schedule of ``weight``
    applies, kept in a variable updated inside the compiled step and logged as ``weight/kl``:

    * ``{schedule: linear, start: 0, end: 1, steps: N, delay: D}`` — warm-up from ``start`` to
      ``end`` over N steps after D steps;
    * ``{schedule: sigmoid, start: 0, end: 1, midpoint: M, sharpness: k}`` — Bowman et al. 2016,
      start + (end − start)·σ(k·(t − M));
    * ``{schedule: cyclical, start: 0, end: 1, steps: N, cycles: C, ratio: R}`` — Fu et al. 2019,
      C cycles over N steps, restarting every ⌈N/C⌉ steps, each rising linearly for the fraction R
      of the cycle, then at ``end``; after N steps the weight stays at ``end``;
    * ``{schedule: constant, end: w}``, or a number.

    It applies in validation too; there the sampling layer decodes the mean, so ``val_loss`` is
    the reconstruction of μ plus the KL term.

    Options: ``weight``; ``mean_layer``; ``log_var_layer``.
    """

    def __init__(self, weight: Any = 1.0, mean_layer: str = "z_mean", log_var_layer: str = "z_log_var",
                 **kwargs: Any) -> None:
        super().__init__(weight=weight, **kwargs)
        for option, value in (("mean_layer", mean_layer), ("log_var_layer", log_var_layer)):
            self.require(isinstance(value, str) and bool(value), option, "a layer name", value)
        self.mean_layer = mean_layer
        self.log_var_layer = log_var_layer

    def outputs_needed(self) -> List[str]:
        return [self.mean_layer, self.log_var_layer]

    def attach(self, network: keras.Model) -> None:
        """Both layers exist (else: this needs ``model=vae``) and have the same output shape."""
        layers = [layer.name for layer in network.layers if not isinstance(layer, LossTap)]
        missing = [name for name in self.outputs_needed() if name not in layers]
        if missing:
            raise ConfigError(
                f"Invalid value for loss.{self.name}: needs model=vae (layers {', '.join(self.outputs_needed())}); "
                f"the model has {', '.join(layers)}"
            )
        shapes = [self.output_shape(network, name) for name in self.outputs_needed()]
        self.require(shapes[0] == shapes[1], "log_var_layer", f"a layer with the output shape of "
                     f"{self.mean_layer} {shapes[0]}", f"{self.log_var_layer} {shapes[1]}")

    def term(self, context: LossContext) -> Any:
        mean = ops.cast(context.outputs[self.mean_layer], "float32")
        log_var = ops.cast(context.outputs[self.log_var_layer], "float32")
        per_example = -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)
        return ops.mean(per_example)
