from bench.cli.report import main

raise SystemExit(main())
