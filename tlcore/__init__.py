"""tlcore: the Transfer Learning Studio engine (datasets, backbones, training). Never imports gradio."""
__version__ = "0.1.0"

__all__ = ["TransferLearningModel"]


def __getattr__(name: str):
    # Lazily: `python -m tlcore --help` and `import tlcore.config` need not load torch.
    if name == "TransferLearningModel":
        from .tlm import TransferLearningModel

        return TransferLearningModel
    raise AttributeError(f"module 'tlcore' has no attribute {name!r}")
