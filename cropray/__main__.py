from cropray.cli import main

raise SystemExit(main())
