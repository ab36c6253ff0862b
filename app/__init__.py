"""FastVideo Studio: the desktop app (PySide6).

The GUI process never imports torch: generation runs in an inference process
(``python -m fastvideo.serve``) that the studio starts and owns.
"""

__version__ = "0.1.0"
