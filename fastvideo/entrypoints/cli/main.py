"""``fastvideo`` command line: one subcommand per module in this folder.

Each subcommand module defines ``register(subparsers)`` which adds its parser
and sets ``func`` (called with the parsed args, returns the exit code).  Heavy
imports (torch, models) happen inside ``func`` so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = [
    "bench",
    "generate",
    "inspect_mapping",
    "convert",
    "download",
    "make_tiny",
    "parity",
    "train",
]


def build_parser() -> argparse.ArgumentParser:
    from fastvideo import __version__

    parser = argparse.ArgumentParser(prog="fastvideo", description="Video diffusion inference: generate, port, check.")
    parser.add_argument("--version", action="version", version=f"fastvideo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"fastvideo.entrypoints.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # our errors carry the file and the problem
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
