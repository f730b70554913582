"""Kill test: SIGKILL the real service under load, then prove nothing went wrong.

    .venv/bin/python scripts/killtest.py --kills 20 --events 5000 --connections 32

The test itself lives in testkit/killtest/ (the test suite runs a short
form of it); this is its command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a file, the repository root is not on the path yet.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.killtest import main

if __name__ == "__main__":
    sys.exit(main())
