"""``python -m fastvideo.serve``: the inference process (see docs/protocol.md)."""

from fastvideo.serve.host import main

if __name__ == "__main__":
    raise SystemExit(main())
