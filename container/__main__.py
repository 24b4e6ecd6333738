"""`python -m container serve`: the image's entrypoint, runnable from a checkout."""

from __future__ import annotations

import sys

from container.entrypoint import main

if __name__ == "__main__":
    sys.exit(main())
