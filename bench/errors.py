"""The one error class users see: a message naming the thing that is wrong and how to fix it."""

from __future__ import annotations


class BenchError(Exception):
    """A problem with the user's input or environment. The CLI prints it as one line, exit code 2."""
