"""``python -m mmsentiment``: the ``mmsentiment`` command."""

import sys

from .cli import main

sys.exit(main())
