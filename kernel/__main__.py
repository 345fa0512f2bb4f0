from workeros.cli import main

raise SystemExit(main())
