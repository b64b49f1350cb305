"""`make bench`: every benchmark in turn, each printing its table with the same-run baseline.

python -m bench.run_all [--quick] [--only ack_path,end_to_end,memory,...] (names: BENCHMARKS below)
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import (
    ack_path,
    bursts,
    end_to_end,
    fairness,
    flower_view,
    language_detection,
    media_budget,
    memory,
    redis_roundtrips,
    slow_clients,
)

BENCHMARKS = (
    "ack_path",
    "end_to_end",
    "memory",
    "media_budget",
    "flower_view",
    "language_detection",
    "redis_roundtrips",
    "slow_clients",
    "fairness",
    "bursts",
)


def run(quick: bool = False, only: tuple[str, ...] = BENCHMARKS, compare: str | None = None) -> dict[str, object]:
    results: dict[str, object] = {}
    for name in only:
        started = time.monotonic()
        if name == "ack_path":
            results[name] = ack_path.run(1.0 if quick else 10.0, 50, quick, compare, 1 if quick else 3)
        elif name == "end_to_end":
            results[name] = end_to_end.run(5 if quick else 100, 10 if quick else 400)
        elif name == "memory":
            results[name] = memory.run(0.25, quick)
        elif name == "media_budget":
            results[name] = media_budget.run(quick)
        elif name == "language_detection":
            results[name] = language_detection.run()
        elif name == "redis_roundtrips":
            results[name] = redis_roundtrips.run(3 if quick else 5, compare or "main")
        elif name == "slow_clients":
            results[name] = slow_clients.run(50 if quick else 1000, quick)
        elif name == "fairness":
            results[name] = fairness.run(quick)
        elif name == "bursts":
            results[name] = bursts.run(quick)
        elif name == "flower_view":
            results[name] = flower_view.run(1.0 if quick else 8.0, 1 if quick else 3, quick)
        else:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        print(f"({name} took {time.monotonic() - started:.0f} s)", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny loads: proves they run")
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    parser.add_argument("--compare", metavar="GIT_REF", help="ack path: also measure the API as of this revision")
    args = parser.parse_args()
    run(args.quick, tuple(n.strip() for n in args.only.split(",") if n.strip()), args.compare)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
