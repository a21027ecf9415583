"""Workflows built from many runs: transfer vs scratch, the data-efficiency curve, Teach it."""
