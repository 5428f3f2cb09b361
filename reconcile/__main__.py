from reconcile.cli.main import main

raise SystemExit(main())
