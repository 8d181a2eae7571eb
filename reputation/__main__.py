import sys

from reputation.cli import main

sys.exit(main())
