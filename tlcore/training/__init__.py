"""Training: the loop and its callbacks, the step, the objective and its regularizers, optimizers
and schedules, a run's state and resume, gradual unfreezing, the LR finder, the suggestions."""
