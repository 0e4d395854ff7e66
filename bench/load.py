"""Load benchmark: the bot in HTTP mode under a burst of commands then confirms, MailPartner slow.

Starts `python -m bot` against a local fake Slack and a fake MailPartner that takes `--latency` seconds per
call, then for each N: N concurrent `/cancel-mail` commands, then N concurrent confirm clicks, while a
probe measures `GET /healthz` on the same server. Prints a Markdown table.

    python bench/load.py                 # N = 50 and 200, MailPartner 3 s
    python bench/load.py --n 20 --latency 1
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.localslack import LocalSlack
from bot.slackwire import FORM, button_click, buttons, signed_headers, slash_command
from tests.fakes import SIGNING_SECRET, BotProcess, FakeMailPartner, bot_env, free_port

ACK_LIMIT = 3.0


def post(port: int, body: str) -> tuple[float, int, bytes]:
    """One request on a fresh connection, as Slack sends it; returns (seconds, status, body)."""
    headers = signed_headers(SIGNING_SECRET, body, content_type=FORM)
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/slack/events", body=body.encode(), headers=headers)
        response = conn.getresponse()
        data = response.read()
        return time.monotonic() - started, response.status, data
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def health(port: int) -> float:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
    finally:
        conn.close()
    return time.monotonic() - started


def burst(pool: ThreadPoolExecutor, port: int, bodies: list[str], health_times: list[float]) -> list:
    """Send `bodies` all at once, with one `GET /healthz` mixed in for every four: the health checks meet
    the same queue as the Slack requests, so their p99 is the floor a request can reach under this load."""
    futures = []
    for i, body in enumerate(bodies):
        futures.append(pool.submit(post, port, body))
        if i % 4 == 0:
            health_times.append(pool.submit(health, port))  # type: ignore[arg-type]
    results = [f.result() for f in futures]
    return results


class RssSampler(threading.Thread):
    """Peak resident memory of the bot's processes (gunicorn master + worker), sampled every 20 ms."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(daemon=True)
        self.root, self.peak_total, self.peak_worker, self.stop = root_pid, 0, 0, threading.Event()

    def pids(self) -> list[int]:
        children = Path(f"/proc/{self.root}/task/{self.root}/children")
        try:
            return [self.root, *(int(p) for p in children.read_text().split())]
        except OSError:
            return [self.root]

    @staticmethod
    def rss_kib(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def run(self) -> None:
        while not self.stop.is_set():
            sizes = [self.rss_kib(pid) for pid in self.pids()]
            self.peak_total = max(self.peak_total, sum(sizes))
            self.peak_worker = max(self.peak_worker, max(sizes[1:], default=0))
            time.sleep(0.02)


def run_once(n: int, latency: float, workdir: Path) -> dict[str, float]:
    slack = LocalSlack().start()
    mailpartner = FakeMailPartner(delay=latency, extra_mails=n).start()
    port = free_port()
    env = bot_env(port, slack.api_url, mailpartner.base_url, LOG_LEVEL="WARNING", MAILPARTNER_TIMEOUT=str(latency + 5))
    env.update({k: v for k, v in os.environ.items() if k.startswith("CANCEL_MAIL_")})
    started = time.monotonic()
    bot = BotProcess(env, workdir / f"bot-{n}.log")
    try:
        startup = bot.wait_healthy()
        rss = RssSampler(bot.proc.pid)
        rss.start()
        mails = [f"m{i:04d}" for i in range(n)]
        health_futures: list = []
        with ThreadPoolExecutor(n + n // 4 + 1) as pool:
            command_bodies = [
                slash_command(m, user="U0BENCH000", channel="C0BENCH000", response_url=slack.new_response_url())
                for m in mails
            ]
            commands = burst(pool, port, command_bodies, health_futures)
            prompts = [json.loads(body) for _, _, body in commands]
            urls = [slack.new_response_url() for _ in mails]
            click_bodies = [
                button_click(buttons(p)["cancel_mail_confirm"], user="U0BENCH000", channel="C0BENCH000", response_url=u)
                for p, u in zip(prompts, urls, strict=True)
            ]
            clicks_started = time.monotonic()
            clicks = burst(pool, port, click_bodies, health_futures)
            health_times = [f.result() for f in health_futures]
        wanted = {u.removeprefix(slack.url) for u in urls}
        posted = slack.wait_for(
            lambda c: c.path in wanted and c.payload.get("response_type") == "in_channel", count=n, timeout=120
        )
        all_posted = max(c.time for c in posted) - clicks_started if len(posted) == n else float("inf")
        rss.stop.set()
        rss.join()
        acks = [t for t, _, _ in commands] + [t for t, _, _ in clicks]
        statuses = {s for _, s, _ in commands} | {s for _, s, _ in clicks}
        cancelled_once = sum(1 for m in mails if mailpartner.cancels[m] == 1)
        return {
            "n": n,
            "ack_p50": statistics.median(acks),
            "ack_p99": percentile(acks, 99),
            "ack_max": max(acks),
            "health_p99": percentile(health_times, 99),
            "all_posted": all_posted,
            "posted": len(posted),
            "cancelled_once": cancelled_once,
            "statuses": ",".join(map(str, sorted(statuses))),
            "rss_total_mb": rss.peak_total / 1024,
            "rss_worker_mb": rss.peak_worker / 1024,
            "startup": startup,
            "wall": time.monotonic() - started,
        }
    finally:
        bot.stop()
        mailpartner.stop()
        slack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="burst size (repeatable); default 50 and 200")
    parser.add_argument("--latency", type=float, default=3.0, help="MailPartner seconds per call")
    args = parser.parse_args()
    sizes = args.n or [50, 200]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_once(n, args.latency, Path(tmp)) for n in sizes]
    print(f"MailPartner latency {args.latency:g} s; {os.cpu_count()} cores; CANCEL_MAIL_WORKERS default\n")
    print(
        "| N | ack p50 | ack p99 | ack max | /healthz p99 | all outcomes posted | posted | cancelled once "
        "| HTTP | peak RSS (all / worker) | start-up |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(
            f"| {r['n']} | {r['ack_p50'] * 1000:.0f} ms | {r['ack_p99'] * 1000:.0f} ms | {r['ack_max'] * 1000:.0f} ms "
            f"| {r['health_p99'] * 1000:.0f} ms | {r['all_posted']:.2f} s | {r['posted']}/{r['n']} "
            f"| {r['cancelled_once']}/{r['n']} | {r['statuses']} "
            f"| {r['rss_total_mb']:.0f} / {r['rss_worker_mb']:.0f} MB | {r['startup']:.2f} s |"
        )
    target = 2 * args.latency + 1
    failed = [
        f"N={r['n']}: "
        + ", ".join(
            what
            for what, bad in [
                (f"ack max {r['ack_max']:.2f}s ≥ {ACK_LIMIT}s", r["ack_max"] >= ACK_LIMIT),
                ("ack p99 over 2× /healthz p99", r["ack_p99"] > 2 * r["health_p99"]),
                (f"outcomes after {r['all_posted']:.2f}s > {target:g}s", r["all_posted"] > target),
                (f"peak RSS {r['rss_worker_mb']:.0f} MB ≥ 120 MB (worker)", r["rss_worker_mb"] >= 120),
                ("not every mail cancelled exactly once", r["cancelled_once"] != r["n"]),
            ]
            if bad
        )
        for r in rows
    ]
    failed = [f for f in failed if not f.endswith(": ")]
    print("\nTargets: " + ("all met" if not failed else "MISSED — " + "; ".join(failed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
