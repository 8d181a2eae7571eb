"""``python -m benchmarks``: the whole suite (see benchmarks/README.md)."""

import sys

from benchmarks.suite import main

sys.exit(main())
