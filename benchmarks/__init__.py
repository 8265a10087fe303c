"""What lossexp costs over plain Keras, and how that grows: ``python -m benchmarks`` (``make bench``).

One module per measure, each a ``measure(quick) -> dict``; ``__main__`` runs them, writes
``benchmarks/results.json`` (one key per measure, ``overhead_ratio`` at the top level) and
``benchmarks/RESULTS.md``. This machine is noisy: every comparison is measured side by side in
one run, with the variants interleaved over repeats, and reported as median and spread.
"""
