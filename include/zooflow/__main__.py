from zooflow.cli import main

raise SystemExit(main())
