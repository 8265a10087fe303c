"""A loss component of the project's own: a penalty on the spread of the predictions."""
from keras import ops

import lossexp


@lossexp.register_component("pred_variance")
class PredictionVariance(lossexp.LossComponent):
    """term = mean over outputs of the batch variance of ŷ: (1/N) Σ_i (ŷ_i − mean(ŷ))².

    Pulls the predictions together, trading fit for a lower spread; ``center: false`` penalises
    mean(ŷ²) instead (the spread around zero).

    Options: ``weight``; ``center``.
    """

    def __init__(self, weight=0.01, center: bool = True, **kwargs):
        super().__init__(weight=weight, **kwargs)
        self.require(isinstance(center, bool), "center", "true or false", center)
        self.center = center

    def term(self, context: lossexp.LossContext):
        y = ops.cast(context.y_pred, "float32")
        if self.center:
            y = y - ops.mean(y, axis=0, keepdims=True)
        return ops.mean(ops.square(y))
