"""Measures of a trained model's output that are not losses (NumPy only, no TensorFlow)."""
