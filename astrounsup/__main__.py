"""``python -m astrounsup`` runs the command line."""

import sys

from astrounsup.cli import main

sys.exit(main())
