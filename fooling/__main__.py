from fooling.cli import main

raise SystemExit(main())
