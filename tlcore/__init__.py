"""tlcore: the Transfer Learning Studio engine (datasets, backbones, training). Never imports gradio."""
__version__ = "0.1.0"
