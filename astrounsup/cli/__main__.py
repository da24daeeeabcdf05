"""``python -m astrounsup.cli`` (as ``torchrun -m`` launches it) runs the command line."""

import sys

from astrounsup.cli import main

sys.exit(main())
