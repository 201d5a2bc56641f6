"""`python -m qgtm`: the same as the `qgtm` command."""

import sys

from qgtm.cli import main

sys.exit(main())
