"""`python -m bench.run`: the sweep command (bench/cli/run.py). Kept at this name because it is
the product's entry point; nothing imports it."""

import sys

from bench.cli.run import main

if __name__ == "__main__":
    sys.exit(main())
