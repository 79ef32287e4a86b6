"""``python -m pytest_edgetpu``: the pytest-edgetpu command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
