"""``python -m defacebench`` runs the command line."""

import sys

from defacebench.cli import main

sys.exit(main())
