"""Burst merging: model calls and replies per burst for bursts of 1-10 messages, and the latency a message alone
pays for the window, with COALESCE_WINDOW_SECONDS on (the shipped 2.5 s) and off (0: the baseline), same run.

The whole service runs (Redis, API, one worker with every pool, the Groq and Graph fakes of the test suite; Groq
answers at once, so the figures are the service's own). Per variant:

- bursts: ten users at once, user n sending n messages GAP s apart (GAP well inside the window); per burst size,
  the chat calls and replies it got, and whether any call mixed two users' words;
- a steady writer: one message every STEADY_GAP s for STEADY_SECONDS (longer than COALESCE_MAX_WAIT_SECONDS):
  how many answers the cap lets through;
- single messages: SINGLES users, one message each, SINGLE_SPACING s apart: the time from the webhook's POST to
  the reply at the Graph fake (median, p95, worst); the added latency is the window-on figure minus the baseline.

    python -m bench.bursts [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import common
from bench.stack import Stack, percentile, stack
from tests.fakes.server import wait_for
from tests.webhooks import encode, message_body, signed_headers, text_message

WINDOW, MAX_WAIT = 2.5, 8.0
GAP = 0.5
STEADY_GAP, STEADY_SECONDS = 1.0, 16
SINGLE_SPACING = 0.3
VARIANTS = (("off (baseline)", "0"), (f"on ({WINDOW} s)", str(WINDOW)))


def post(http: httpx.Client, url: str, user: str, text: str) -> tuple[str, float]:
    message = text_message(f"{user} {text}", sender=user)
    raw = encode(message_body([message], sender=user))
    sent = time.perf_counter()
    http.post(f"{url}/webhook", content=raw, headers=signed_headers(raw)).raise_for_status()
    return message["id"], sent


def burst(url: str, user: str, size: int, gap: float) -> None:
    with httpx.Client(timeout=30) as http:
        for index in range(size):
            if index:
                time.sleep(gap)
            post(http, url, user, f"m{index}")


def drained(s: Stack) -> bool:
    return not s.redis.client.keys("lp:inbox:*") and s.redis.client.zcard("lp:leases") == 0


def calls_by_user(s: Stack) -> tuple[dict[str, int], int]:
    """Chat calls per user (by the words' prefix), and how many calls held words of more than one user."""
    per_user: dict[str, int] = {}
    mixed = 0
    for call in s.groq.calls_to("chat/completions"):
        users = {line.split(" ", 1)[0] for line in str(call.body["messages"][-1]["content"]).splitlines()}
        mixed += len(users) > 1
        for user in users:
            per_user[user] = per_user.get(user, 0) + 1
    return per_user, mixed


def one_variant(s: Stack, window: str, sizes: list[int], singles: int, steady: bool) -> dict[str, Any]:
    s.redis.client.flushdb()
    s.graph.reset()
    s.groq.reset()
    s.env["COALESCE_WINDOW_SECONDS"] = window
    s.start_worker("--pool", "all", "--concurrency", "4", name=f"window{window}")
    try:
        users = {size: f"15550210{size:03d}" for size in sizes}
        threads = [threading.Thread(target=burst, args=(s.api.url, users[n], n, GAP)) for n in sizes]
        if steady:
            count = int(STEADY_SECONDS / STEADY_GAP)
            threads.append(threading.Thread(target=burst, args=(s.api.url, "15550219999", count, STEADY_GAP)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_for(lambda: drained(s), timeout=120, interval=0.2, what="every burst answered")
        per_user, mixed = calls_by_user(s)
        bursts = {n: (per_user.get(users[n], 0), len(s.graph.texts_to(users[n]))) for n in sizes}
        steady_answers = len(s.graph.texts_to("15550219999")) if steady else None

        sent: dict[str, float] = {}
        with httpx.Client(timeout=30) as http:
            for index in range(singles):
                message_id, at = post(http, s.api.url, f"15550220{index:03d}", "alone")
                sent[message_id] = at
                time.sleep(SINGLE_SPACING)
        wait_for(lambda: all(m in s.graph.replied_at for m in sent), timeout=120, what="the single messages' replies")
        latencies = [s.graph.replied_at[m] - at for m, at in sent.items()]
    finally:
        s.stop_workers()
    return {"bursts": bursts, "mixed": mixed, "steady": steady_answers, "latencies": latencies}


def run(quick: bool = False) -> dict[str, Any]:
    sizes = [1, 2, 3] if quick else list(range(1, 11))
    singles = 5 if quick else 30
    facts = common.machine() | {
        "bursts": f"users sending 1-{max(sizes)} messages {GAP} s apart, all at once; COALESCE_MAX_WAIT_SECONDS="
        f"{MAX_WAIT:g}",
        "single messages": f"{singles} users, one message each, {SINGLE_SPACING} s apart; Groq answers at once",
        "baseline": "the same run with COALESCE_WINDOW_SECONDS=0",
    }
    common.print_header("Burst merging", facts)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-bursts-") as tmp, stack(Path(tmp)) as s:
        s.env |= {"COALESCE_MAX_WAIT_SECONDS": str(MAX_WAIT), "RATE_LIMITS_ENABLED": "false"}
        for name, window in VARIANTS:
            results[name] = one_variant(s, window, sizes, singles, steady=not quick)
    off, on = (results[name] for name, _ in VARIANTS)
    common.print_table(
        ["messages in the burst", "model calls (off)", "replies (off)", "model calls (on)", "replies (on)"],
        [[n, off["bursts"][n][0], off["bursts"][n][1], on["bursts"][n][0], on["bursts"][n][1]] for n in sizes],
    )
    print(f"\ncalls mixing two users' words: off {off['mixed']}, on {on['mixed']}")
    if not quick:
        count = int(STEADY_SECONDS / STEADY_GAP)
        print(
            f"steady writer ({count} messages, {STEADY_GAP:g} s apart): replies off {off['steady']}, on {on['steady']}"
        )
    print()
    rows = []
    for name, _ in VARIANTS:
        latencies = results[name]["latencies"]
        rows.append(
            [
                name,
                f"{percentile(latencies, 50):.3f}",
                f"{percentile(latencies, 95):.3f}",
                f"{max(latencies):.3f}",
            ]
        )
    added = percentile(on["latencies"], 50) - percentile(off["latencies"], 50)
    common.print_table(["window", "single message p50 (s)", "p95 (s)", "worst (s)"], rows)
    print(f"\nadded latency for a message alone (p50, on - off): {added:.3f} s")
    results["added_p50_s"] = round(added, 3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="bursts of 1-3 and 5 single messages: proves it runs")
    run(parser.parse_args().quick)


if __name__ == "__main__":
    main()
