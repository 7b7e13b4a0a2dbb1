"""``python -m bookdriver``: see ``bookdriver.cli``."""

import sys

from .cli import main

sys.exit(main())
