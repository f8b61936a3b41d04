"""The one error class users see: a message naming the thing that is wrong and how to fix it."""

from __future__ import annotations

import sys
from collections.abc import Callable


class BenchError(Exception):
    """A problem with the user's input or environment. The CLI prints it as one line, exit code 2."""


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """`main(argv)` for a command-line tool: a BenchError becomes one line on stderr and exit 2."""
    try:
        return main(argv)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
