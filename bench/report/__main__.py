from bench.report.cli import main

raise SystemExit(main())
