"""The one error class users see, and the one handler every command goes through."""

from __future__ import annotations

import sys
from collections.abc import Callable


class BenchError(Exception):
    """A problem with the user's input or environment. The CLI prints it as one line, exit code 2."""


def run_cli(
    main: Callable[[list[str] | None], int],
    argv: list[str] | None = None,
    interrupted: str = "",
) -> int:
    """`main(argv)` for a command-line tool: a BenchError becomes one line on stderr and exit 2;
    Ctrl-C becomes "interrupted" (and what was kept, `interrupted`) and exit 130."""
    try:
        return main(argv)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted" + (f": {interrupted}" if interrupted else ""), file=sys.stderr)
        return 130
