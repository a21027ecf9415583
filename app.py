"""Transfer Learning Studio: `python app.py` (also the Hugging Face Spaces entry point)."""
from tlcore.ui import FOOTER, MAX_UPLOAD, STATE_SESSIONS, build_app

demo = build_app()  # queue settings (concurrency, bounded waiting line) are made there

if __name__ == "__main__":
    demo.launch(max_file_size=MAX_UPLOAD, footer_links=FOOTER, state_session_capacity=STATE_SESSIONS)
