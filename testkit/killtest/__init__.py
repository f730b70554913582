"""Kill test: SIGKILL the real service under load, then prove nothing went wrong.

    .venv/bin/python scripts/killtest.py --kills 20 --events 5000 --connections 32

Runs `python -m service run` (SQLite) in a fresh data dir. A simulated
JeriCommerce sender (asyncio + httpx, `--connections` concurrent connections)
delivers a realistic mix of the 18 event types for a few hundred customers,
some events more than once, and retries every delivery that does not get a
2xx (connection refused or reset, timeout, 503) after a short back-off, as
JeriCommerce does. Meanwhile the service is killed with SIGKILL `--kills`
times at random moments and restarted each time.

Afterwards it prints the figures and checks, exiting non-zero if any fails:

- acknowledged events lost: every id that ever got a 2xx is in the store;
- stored twice: no id occurs twice in the store;
- answers: every 2xx for an id names the same position, and the stored event
  at that position is that id; at most one `accepted` per id;
- applied twice: the sum of `event_count` over all customers (gRPC
  ListCustomers) equals the stored events of known types minus the dead
  letters, and every customer's read model equals the pure fold of that
  customer's stored events;
- the read models equal a rebuild from scratch (RebuildProjections).

The test suite runs a short form (tests/e2e/test_kill_and_storm.py) through
`run()`.
"""

from testkit.killtest.report import Report
from testkit.killtest.run import main, run

__all__ = ["Report", "main", "run"]
