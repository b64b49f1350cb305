"""Other users' latency while one user floods the bot (issue 16, kind 2): with and without the fair share of the
Groq budget, and with the per-user limit on top, in the same run.

The whole service runs (Redis, API, a text worker with 4 processes, the Groq and Graph fakes of the test suite;
Groq answers after `CHAT_DELAY` s). The chat budget is the free tier's 30 requests per minute on a window shortened
to WINDOW s, so a run takes seconds, not minutes. One user sends FLOOD messages at once; once the flood has filled
the budget, OTHERS users write one message each, SPACING s apart. Per variant:

- the other users' reply latency (from their webhook to the reply at the Graph fake): median and worst;
- how many chat calls the flooder took while the others waited (from their first message to their last call);
- the flooder's model calls and the seconds until its last message was handled.

    python -m bench.fairness [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import common
from bench.stack import Stack, percentile, stack
from tests.fakes.server import wait_for
from tests.webhooks import encode, message_body, signed_headers, text_message

FLOODER = "15550170000"
CHAT_DELAY = 0.05
SPACING = 0.5

VARIANTS = (
    ("budget only (no fair share, no per-user limit)", {"GROQ_FAIR_SHARE": "false", "USER_MESSAGES_PER_WINDOW": "0"}),
    ("fair share", {"GROQ_FAIR_SHARE": "true", "USER_MESSAGES_PER_WINDOW": "0"}),
    ("fair share + per-user limit (12 per window)", {"GROQ_FAIR_SHARE": "true", "USER_MESSAGES_PER_WINDOW": "12"}),
)


def post(http: httpx.Client, url: str, user: str, text: str) -> tuple[str, float]:
    message = text_message(f"{user}: {text}", sender=user)
    raw = encode(message_body([message], sender=user))
    sent = time.perf_counter()
    response = http.post(f"{url}/webhook", content=raw, headers=signed_headers(raw))
    response.raise_for_status()
    return message["id"], sent


def sender(call: Any) -> str:
    return str(call.body["messages"][-1]["content"]).split(":", 1)[0]


def one_variant(s: Stack, overrides: dict[str, str], flood: int, others: int, window: float) -> dict[str, Any]:
    s.redis.client.flushdb()
    s.graph.reset()
    s.groq.reset()
    s.groq.chat_delay = CHAT_DELAY
    s.env.update(overrides)
    s.start_worker(
        "--pool",
        "text",
        "--concurrency",
        "4",
        name=overrides["GROQ_FAIR_SHARE"] + overrides["USER_MESSAGES_PER_WINDOW"],
    )
    users = [f"155501701{i:02d}" for i in range(others)]
    try:
        with httpx.Client(timeout=30) as http:
            started = time.perf_counter()
            for i in range(flood):
                post(http, s.api.url, FLOODER, f"flood {i}")
            # The flood has filled the budget (or, with the per-user limit, taken all the limit lets through).
            taken = min(30, int(overrides["USER_MESSAGES_PER_WINDOW"]) or 30)
            wait_for(lambda: len(s.groq.calls_to("chat/completions")) >= taken, timeout=120, what="the flood's calls")
            written_at = len(s.groq.calls_to("chat/completions"))
            sent: dict[str, float] = {}
            for user in users:
                message_id, at = post(http, s.api.url, user, "hello, anyone there?")
                sent[message_id] = at
                time.sleep(SPACING)
            wait_for(lambda: all(m in s.graph.replied_at for m in sent), timeout=600, what="the other users' replies")
            latencies = [s.graph.replied_at[m] - at for m, at in sent.items()]
            # The flooder's mailbox is empty once its last message was handled (answered or only remembered).
            wait_for(lambda: not s.redis.client.exists(f"lp:inbox:{FLOODER}"), timeout=900, what="the flood")
            flood_done = time.perf_counter() - started
            calls = [sender(c) for c in s.groq.calls_to("chat/completions")]
            answered = calls.count(FLOODER)
            # The calls from the others' first message to the last of their calls: who got the budget meanwhile.
            last_other = max(i for i, who in enumerate(calls) if who in users)
            meanwhile = calls[written_at : last_other + 1]
    finally:
        s.stop_workers()
    return {
        "others_p50_s": round(percentile(latencies, 50), 2),
        "others_max_s": round(max(latencies), 2),
        "flood_while_others_waited": f"{meanwhile.count(FLOODER)} of {len(meanwhile)}",
        "flood_calls": answered,
        "flood_done_s": round(flood_done, 1),
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    flood, others, window = (60, 3, 6.0) if quick else (200, 6, 12.0)
    facts = common.machine() | {
        "load": f"{flood} messages from one user at once, then {others} other users, one message each, "
        f"{SPACING} s apart, once the budget is full",
        "budget": f"CHAT_RPM=30 on a {window:.0f} s window (RATE_LIMIT_WINDOW_SECONDS), chat answers in {CHAT_DELAY} s",
        "baseline": "the first row: the shared budget alone, as before the fair share",
    }
    common.print_header("Fairness under a flood", facts)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fairness-") as tmp, stack(Path(tmp)) as s:
        s.env |= {
            "RATE_LIMITS_ENABLED": "true",
            "RATE_LIMIT_WINDOW_SECONDS": str(window),
            "CHAT_RPM": "30",
            "CHAT_TPM": "0",
            "USER_RATE_WINDOW_SECONDS": str(window),
            "TASK_DEADLINE_SECONDS": "1800",
            "CELERY_VISIBILITY_TIMEOUT": "3600",
        }
        for name, overrides in VARIANTS:
            rows.append({"variant": name} | one_variant(s, overrides, flood, others, window))
    base = rows[0]["others_max_s"] or 1.0
    common.print_table(
        [
            "variant",
            "others p50 (s)",
            "others worst (s)",
            "worst vs baseline",
            "flooder's calls while others waited",
            "flood calls",
            "flood done (s)",
        ],
        [
            [
                r["variant"],
                r["others_p50_s"],
                r["others_max_s"],
                f"{r['others_max_s'] / base:.2f}x",
                r["flood_while_others_waited"],
                r["flood_calls"],
                r["flood_done_s"],
            ]
            for r in rows
        ],
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small flood: proves it runs")
    run(parser.parse_args().quick)


if __name__ == "__main__":
    main()
