from dlbasics.cli import main

raise SystemExit(main())
