"""``python -m vae_utils``: see ``vae_utils.cli``."""

import sys

from .cli import main

sys.exit(main())
