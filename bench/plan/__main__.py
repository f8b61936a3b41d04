import sys

from bench.plan.cli import main

sys.exit(main())
