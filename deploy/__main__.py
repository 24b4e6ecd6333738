"""``python -m deploy``: see ``deploy.cli``."""

from __future__ import annotations

import sys

from deploy.cli import main

sys.exit(main())
