"""The fake Twilio (tests/fakes/twilio.py) in a process of its own, for subprocess-based tests
and bench/::

    python -m tests.fakes.twilio_server --port 0 --log /tmp/messages.jsonl

prints its URL on the first stdout line and serves until SIGINT/SIGTERM, appending each
accepted message to ``--log`` as one JSON line (flushed per line); ``--attempts-log FILE`` adds
every attempt, refused or not, and ``--chaos 5xx=0.3,429=0.1,slow=0.05,slow_seconds=3,
retry_after=1,slow_status=504,seed=7`` switches the random faults on.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterable

from tests.fakes.twilio import FakeTwilio

__all__ = ["main"]


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.twilio_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = OS-chosen port (default)")
    parser.add_argument("--log", metavar="FILE", help="append accepted messages as JSON lines")
    parser.add_argument(
        "--no-validate", action="store_true", help="accept requests Twilio would reject"
    )
    parser.add_argument("--attempts-log", metavar="FILE",
                        help="append every attempt (accepted or refused) as JSON lines")
    parser.add_argument("--chaos", metavar="SPEC", default="",
                        help="random faults, e.g. 5xx=0.3,429=0.1,slow=0.05,slow_seconds=3,"
                             "retry_after=1,slow_status=504,seed=7")
    args = parser.parse_args(list(argv) if argv is not None else None)

    stop_signals = {signal.SIGINT, signal.SIGTERM}
    # Block before starting the loop thread so it inherits the mask; sigwait() below gets them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    fake = FakeTwilio(args.host, args.port, log_path=args.log, validate=not args.no_validate)
    fake.attempts_log_path = args.attempts_log
    if args.chaos:
        spec = dict(item.split("=", 1) for item in args.chaos.split(","))
        fake.chaos(
            error_5xx=float(spec.get("5xx", 0)), throttle_429=float(spec.get("429", 0)),
            slow=float(spec.get("slow", 0)), slow_seconds=float(spec.get("slow_seconds", 2)),
            retry_after=spec.get("retry_after", "1"),
            slow_status=int(spec["slow_status"]) if "slow_status" in spec else None,
            seed=int(spec["seed"]) if "seed" in spec else None,
        )
    fake.start()
    try:
        print(fake.url, flush=True)
        signal.sigwait(stop_signals)
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
