"""`python -m serve --model-dir DIR [--port 8080] [--workers N] [--host 0.0.0.0]`."""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from container.entrypoint import main  # the one server start-up path, shared with the image

    sys.exit(main())
