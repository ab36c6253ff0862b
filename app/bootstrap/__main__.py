"""``python -m app.bootstrap``: set up the inference runtime in a terminal."""

from app.bootstrap.cli import main

raise SystemExit(main())
