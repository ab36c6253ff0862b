"""``python -m app``: same as ``fastvideo-studio``."""

from app.main import main

raise SystemExit(main())
