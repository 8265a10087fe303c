"""Building and training the composed model: rewiring, the composed step, drift statistics."""
