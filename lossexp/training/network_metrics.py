"""The metrics a network keeps itself — Keras 3's ``add_metric``: a ``keras.metrics.Metric`` attribute
of a subclassed model or of one of its layers, updated in ``call`` — which the composed model reports
beside its own.

Keras' ``Model.metrics`` skips every sublayer that is a ``keras.Model`` (a new Trainer "instantiated"
around it), so a network wrapped by lossexp's composed model had its own metrics silently dropped,
where the network's own ``fit`` lists them (``gap`` in its history). These are the metrics Keras' ``fit``
of the network would report, less what a ``compile`` of the network added (its loss tracker and
compiled metrics: lossexp compiles its own)."""
from __future__ import annotations

from typing import List

import keras


def networks_own_metrics(network: keras.layers.Layer) -> List[keras.metrics.Metric]:
    """The network's own metric attributes, then those of every layer inside it that is not itself a
    model (as Keras' ``Model.metrics`` lists them), each once."""
    from keras.src.trainers.trainer import Trainer  # Keras' own test for "a model" in Model.metrics

    found: List[keras.metrics.Metric] = []
    seen = set()
    layers = [network] + [layer for layer in network._flatten_layers(include_self=False)
                          if not isinstance(layer, Trainer)]
    for layer in layers:
        for metric in getattr(layer, "_metrics", []):
            if id(metric) not in seen:
                seen.add(id(metric))
                found.append(metric)
    return found
