import sys

from fastvideo.entrypoints.cli.main import main

sys.exit(main())
