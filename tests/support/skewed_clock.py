"""Run the gateway CLI in a process whose own clock is off by OFFSET seconds (reliability F19).

    python -m tests.support.skewed_clock 600 run --once -c gateway.yaml

Python's clocks are shifted before the gateway is imported: `time.time` and the store's
`utcnow` (which every module takes its "now" from), so the process sees the time a node
whose clock runs fast (or slow, with a negative offset) would see. The database's clock is
left alone, as it is on a real skewed node.
"""

from __future__ import annotations

import datetime as dt
import sys
import time


def main() -> None:
    offset = float(sys.argv[1])
    real_time = time.time
    time.time = lambda: real_time() + offset

    import gateway.store
    import gateway.store.db as db

    real_utcnow = db.utcnow

    def skewed() -> dt.datetime:
        return real_utcnow() + dt.timedelta(seconds=offset)

    db.utcnow = skewed
    gateway.store.utcnow = skewed  # type: ignore[attr-defined]
    from gateway.cli import main as cli

    sys.argv = ["gateway", *sys.argv[2:]]
    cli()


if __name__ == "__main__":
    main()
