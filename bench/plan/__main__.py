import sys

from bench.cli.plan import main

sys.exit(main())
