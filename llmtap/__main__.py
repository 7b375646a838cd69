from llmtap.gateway.cli import main

raise SystemExit(main())
