"""The headless Chromium the report's browser test and its benchmark both drive, set up once.

Debian's chromium and chromedriver (README system prerequisites), or the binaries named by
MTBENCH_CHROMIUM / MTBENCH_CHROMEDRIVER. The network is closed here and must stay unused: the
flags turn off background fetches, component updates and sync.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CHROMEDRIVER", "CHROMIUM", "CHROMIUM_FLAGS"]

CHROMIUM = Path(os.environ.get("MTBENCH_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MTBENCH_CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
