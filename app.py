"""Transfer Learning Studio: `python app.py` (also the Hugging Face Spaces entry point)."""
from tlcore.ui import build_app

demo = build_app()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=4).launch()
