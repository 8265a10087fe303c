"""Weighting methods (``weighting=<method>``): how the loss's parts are balanced in each update.

The parts are the *tasks*: the task loss (``task``), each loss component's weighted contribution
(``loss/<c>``, its own ``weight`` already applied) and, when the network has Keras losses no
component owns, ``other``. A method (:class:`~lossexp.balancing.base.WeightingMethod`) turns this
step's task losses — and, for gradient methods, the Gramian of the tasks' gradients on the
network's weights they share — into one weight per task; the compiled step updates the network along
Σ αᵢ·∇Lᵢ. ``equal`` (α = 1) is the plain sum, lossexp's behaviour without a method.

One module per method, registered like every other part (``@register_weighting("name")`` and
``conf/weighting/<name>.yaml``); :mod:`~lossexp.balancing.simplex` holds the solver MGDA and CAGrad
share.
"""
