"""`python -m benchmarks.fake`: serve until SIGTERM or SIGINT (see `benchmarks.fake.server`)."""

from .server import main

raise SystemExit(main())
