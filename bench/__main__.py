"""python -m bench [NAME ...] [options]: run the named benchmarks (all by default)."""

import argparse
import importlib
import sys
import time

from bench.common import log, write_result

BENCHMARKS = {
    "wave": "the 08:00 wave: drain rate and lateness vs the baseline and the ceiling",
    "steady": "steady state with 10,000 and 1,000,000 pending: lateness, tick cost, memory",
    "scaleout": "1, 2 and 4 workers on one wave; two baseline schedulers on one job store",
    "http": "enrolments and signed webhooks per second through gunicorn",
    "ratelimit": "a configured send rate is never exceeded in any second",
    "crash": "SIGKILL while draining, PostgreSQL connections killed: nothing lost",
    "faults": "fake Twilio answering 5xx, 429 and slowly: everything sent once",
    "urgent": "red-flag replies during a rate-limited wave: seconds to the on-call and the client",
    "fairness": "two clinics on one sender: the small clinic's texts beside the big one's wave",
    "dashboard": "the staff dashboard with 1,000 open escalations vs 10: server time, bytes",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=", ".join(BENCHMARKS) + " (default: all)")
    modules = {name: importlib.import_module(f"bench.{name}") for name in BENCHMARKS}
    for name, module in modules.items():
        group = parser.add_argument_group(f"{name}: {BENCHMARKS[name]}")
        module.add_arguments(_Prefixed(group, name))
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    failed = []
    for name in names:
        log(f"=== {name}: {BENCHMARKS[name]}")
        started = time.monotonic()
        own = argparse.Namespace(**{k.removeprefix(f"{name}_"): v for k, v in vars(args).items()
                                    if k.startswith(f"{name}_")})
        try:
            result = modules[name].run(own)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            log(f"{name} failed: {exc!r}")
            failed.append(name)
            continue
        result["seconds"] = round(time.monotonic() - started, 1)
        write_result(name, result)
    return 1 if failed else 0


class _Prefixed:
    """Gives each benchmark its own options: --count of `wave` is --wave-count."""

    def __init__(self, group, name):
        self.group, self.name = group, name

    def add_argument(self, flag, **kwargs):
        return self.group.add_argument(f"--{self.name}-{flag.removeprefix('--')}",
                                       dest=f"{self.name}_{flag.removeprefix('--').replace('-', '_')}",
                                       **kwargs)


if __name__ == "__main__":
    sys.exit(main())
