"""``$PYTHONSTARTUP`` of the book's kernels (set by the book driver): tracebacks show public paths.

IPython runs this file in the kernel's namespace at start-up; it leaves no name behind.
"""

import vae_utils.localpaths as _localpaths

_localpaths.public_tracebacks()
del _localpaths
