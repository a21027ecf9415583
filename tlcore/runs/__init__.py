"""The run folder on disk: its format, atomic writes, checkpoints, the model card, export."""
