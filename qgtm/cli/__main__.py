"""`python -m qgtm.cli`: what the browser terminal (tui/serve.py) and tests start."""

import sys

from qgtm.cli import main

sys.exit(main())
