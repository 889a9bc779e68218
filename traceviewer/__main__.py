from traceviewer.cli import main

raise SystemExit(main())
