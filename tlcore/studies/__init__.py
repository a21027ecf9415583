"""Workflows built from many runs: transfer vs scratch, the data-efficiency curve, the forgetting
demonstration, the lesson, Teach it; where they are (progress) and what they found (verdicts in words)."""
