"""The benchmark: `python -m bot` in HTTP mode, with its store, against a local fake Slack and a fake
MailPartner that takes 3 s per call. Everything runs on this machine: the load generator and both fakes
share the cores with the bot. Prints Markdown tables and checks the targets.

    burst      N concurrent /cancel-mail commands, then N concurrent confirms (SQLite, and PostgreSQL
               when one answers at CANCEL_MAIL_TEST_DATABASE_URL), /healthz probed in the same queue; the
               bot started on its store, as after every start but its first (timed too: it migrates)
    cpu        the bot's own CPU time (all its processes) for N full cancels, divided by N: a burst of 200
               at once (LOG_LEVEL=WARNING, as every part but the next); then, steady with 32 requests in
               flight and default settings, the bot and its two peers in turns, two rounds of 200 each:
               Bolt's starter app with the one call, what a team would write instead, on the sync `App`
               under gunicorn (bench/peer.py) and on `AsyncApp` under aiohttp (bench/peer_async.py);
               nothing pinned to a CPU, each with its defaults
    ratelimit  30 thread prompts in each of two channels, confirmed at once, Slack allowing one
               message a second per channel (and chat.update at Tier 3)
    soak       5 cancels a second for 10 minutes: resident memory and open files over time
    replicas   3 replicas on PostgreSQL behind HAProxy, 1,500 commands then their confirms, one replica
               SIGKILLed (0.05, 1 or 3 s into the clicks) or sent SIGTERM; beside 3 and 1 replica with
               nothing stopped (bench/replicas.py; skipped, saying why, without haproxy or PostgreSQL)

    python bench/load.py                       # all of it (about 20 minutes)
    python bench/load.py --only burst --n 200  # one part, another size
    python bench/load.py --quick               # smaller and shorter, to try the bench itself
    python bench/cpu_parts.py                    # where a cancel's CPU goes, by part (cProfile)
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.console.local_slack import LocalSlack
from bot.console.wire import FORM, JSON, app_mention, blocks_text, button_click, buttons, signed_headers, slash_command
from tests.databases import postgres_problem, postgres_schema, postgres_url
from tests.fakes import SIGNING_SECRET, BotProcess, FakeMailPartner, answer_to, bot_env, free_port, pids_of

# The peers, by name: what a team would write instead of the bot, sync and async.
PEERS = {
    "sync starter": Path(__file__).resolve().with_name("peer.py"),
    "async starter": Path(__file__).resolve().with_name("peer_async.py"),
}
LATENCY = 3.0
ACK_LIMIT = 3.0
USER, CHANNEL = "U0BENCH000", "C0BENCH000"


# -- measuring ---------------------------------------------------------------------------------------------


def post(port: int, body: str, content_type: str = FORM) -> tuple[float, float, int, bytes]:
    """One request on a fresh connection, as Slack sends it; returns (sent at, seconds, status, body)."""
    headers = signed_headers(SIGNING_SECRET, body, content_type=content_type)
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/slack/events", body=body.encode(), headers=headers)
        response = conn.getresponse()
        data = response.read()
        return started, time.monotonic() - started, response.status, data
    finally:
        conn.close()


def full_cancel(port: int, slack: LocalSlack, mail: str, response_url: str) -> None:
    """One cancel as a person makes it: the command, its prompt, the confirm; the outcome goes to
    `response_url`."""
    asked = slack.new_response_url()
    *_, ack = post(port, slash_command(mail, user=USER, channel=CHANNEL, response_url=asked))
    button = buttons(answer_to(slack, asked, json.loads(ack)))["cancel_mail_confirm"]
    post(port, button_click(button, user=USER, channel=CHANNEL, response_url=response_url))


def health(port: int) -> float:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
    finally:
        conn.close()
    return time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def burst(pool: ThreadPoolExecutor, port: int, bodies: list[str], health_futures: list) -> list:
    """Send `bodies` all at once, one `GET /healthz` mixed in for every four: the health checks meet the
    same queue as Slack's requests, so their p99 is the floor a request can reach under this load."""
    futures = []
    for i, body in enumerate(bodies):
        futures.append(pool.submit(post, port, body))
        if i % 4 == 0:
            health_futures.append(pool.submit(health, port))
    return [f.result() for f in futures]


def proc_kib(pid: int, path: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mb(root: int) -> tuple[float, float]:
    """(PSS of all the process tree's processes, RSS summed over them). PSS shares each page among the
    processes that map it (a gunicorn master and its worker); the bot is one process, where both agree."""
    pids = pids_of(root)
    pss = sum(proc_kib(p, "smaps_rollup", "Pss:") for p in pids)
    rss = sum(proc_kib(p, "status", "VmRSS:") for p in pids)
    return pss / 1024, rss / 1024


def proc_entries(root: int, folder: str) -> int:
    """Entries of /proc/PID/`folder` summed over the process tree: `task` its threads, `fd` its open files."""
    total = 0
    for pid in pids_of(root):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{pid}/{folder}"))
    return total


def threads(root: int) -> int:
    return proc_entries(root, "task")


def open_files(root: int) -> int:
    return proc_entries(root, "fd")


def cpu_seconds(root: int) -> float:
    ticks = 0
    for pid in pids_of(root):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


class MemorySampler(threading.Thread):
    """The peaks of memory and threads, sampled every 50 ms."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.pss, self.rss, self.threads, self.stop = root, 0.0, 0.0, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pss, rss = memory_mb(self.root)
            self.pss, self.rss, self.threads = (
                max(self.pss, pss),
                max(self.rss, rss),
                max(self.threads, threads(self.root)),
            )
            time.sleep(0.05)


# -- a bot with its fakes ----------------------------------------------------------------------------------


@dataclass
class World:
    slack: LocalSlack
    mailpartner: FakeMailPartner
    bot: BotProcess
    port: int
    startup: float
    first_startup: float = 0.0  # the bot's first start, which created and migrated its store
    mails: Iterator[str] = field(default_factory=lambda: (f"m{i:05d}" for i in range(10**6)))

    def new_mails(self, n: int) -> list[str]:
        return [next(self.mails) for _ in range(n)]


@contextlib.contextmanager
def world(
    workdir: Path, database_url: str, *, mails: int, extra_env: dict[str, str] | None = None, peer: str = ""
) -> Iterator[World]:
    slack = LocalSlack().start()
    mailpartner = FakeMailPartner(delay=LATENCY, extra_mails=mails).start()
    port = free_port()
    env = bot_env(port, slack.api_url, mailpartner.base_url, LOG_LEVEL="WARNING", MAILPARTNER_TIMEOUT=str(LATENCY + 5))
    env.update({"DATABASE_URL": database_url, **(extra_env or {})})
    env.update({k: v for k, v in os.environ.items() if k.startswith("CANCEL_MAIL_") and "TEST" not in k})
    command = (str(PEERS[peer]),) if peer else ("-m", "bot")
    name = PEERS[peer].stem if peer else "bot"
    first_startup = 0.0
    if not peer:  # the bot as it runs between deploys: its first start made its store, this one finds it
        first = BotProcess(env, workdir / f"first-{time.monotonic_ns()}.log", command)
        try:
            first_startup = first.wait_healthy()
        finally:
            first.stop()
    bot = BotProcess(env, workdir / f"{name}-{time.monotonic_ns()}.log", command)
    try:
        startup = bot.wait_healthy()
        yield World(slack, mailpartner, bot, port, startup, first_startup)
    finally:
        bot.stop()
        mailpartner.stop()
        slack.stop()


def databases(workdir: Path, want_postgres: bool) -> Iterator[tuple[str, str]]:
    yield "SQLite", f"sqlite:///{workdir}/bench.db"
    if not want_postgres:
        return
    if problem := postgres_problem(postgres_url()):
        print(f"(PostgreSQL skipped: {problem})")
        return
    import pytest  # postgres_schema() skips through pytest when no server answers; it answered above

    try:
        with postgres_schema() as url:
            yield "PostgreSQL", url
    except pytest.skip.Exception as skipped:
        print(f"(PostgreSQL skipped: {skipped})")


def commands_then_clicks(w: World, pool: ThreadPoolExecutor, mails: list[str], health_futures: list) -> dict[str, Any]:
    """N commands at once, then their N confirms at once; returns timings and the outcome times."""
    command_urls = [w.slack.new_response_url() for _ in mails]
    command_bodies = [
        slash_command(m, user=USER, channel=CHANNEL, response_url=u) for m, u in zip(mails, command_urls, strict=True)
    ]
    commands = burst(pool, w.port, command_bodies, health_futures)
    # Each ack says "looking up…"; the prompt takes its place once MailPartner said what the mail is.
    prompts = [answer_to(w.slack, u, json.loads(body)) for u, (*_, body) in zip(command_urls, commands, strict=True)]
    urls = [w.slack.new_response_url() for _ in mails]
    click_bodies = [
        button_click(buttons(p)["cancel_mail_confirm"], user=USER, channel=CHANNEL, response_url=u)
        for p, u in zip(prompts, urls, strict=True)
    ]
    clicks = burst(pool, w.port, click_bodies, health_futures)
    by_path = {u.removeprefix(w.slack.url): sent for u, (sent, *_) in zip(urls, clicks, strict=True)}
    posted = w.slack.wait_for(
        lambda c: c.path in by_path and c.payload.get("response_type") == "in_channel", count=len(mails), timeout=180
    )
    return {
        "acks": [t for _, t, _, _ in commands] + [t for _, t, _, _ in clicks],
        "statuses": {s for *_, s, _ in commands} | {s for *_, s, _ in clicks},
        "click_to_outcome": [c.time - by_path[c.path] for c in posted],
        "burst_span": (max(c.time for c in posted) - min(sent for sent, *_ in clicks)) if posted else float("inf"),
        "posted": len(posted),
    }


# -- the parts ---------------------------------------------------------------------------------------------


def run_burst(workdir: Path, n: int, want_postgres: bool) -> list[dict[str, Any]]:
    rows = []
    for name, url in databases(workdir, want_postgres):
        with world(workdir, url, mails=0) as w:
            sampler = MemorySampler(w.bot.proc.pid)
            sampler.start()
            mails = w.new_mails(n)
            w.mailpartner.sandbox.add_mails(mails)
            health_futures: list = []
            with ThreadPoolExecutor(n + n // 4 + 1) as pool:
                result = commands_then_clicks(w, pool, mails, health_futures)
                health_times = [f.result() for f in health_futures]
            sampler.stop.set()
            sampler.join()
            per_mail = [sum(1 for r in w.mailpartner.requests if r["messageId"] == m) for m in mails]
            rows.append(
                {
                    "store": name,
                    "n": n,
                    "ack_p50": statistics.median(result["acks"]),
                    "ack_p99": percentile(result["acks"], 99),
                    "ack_max": max(result["acks"]),
                    "health_p99": percentile(health_times, 99),
                    "outcome_max": max(result["click_to_outcome"], default=float("inf")),
                    "burst_span": result["burst_span"],
                    "posted": result["posted"],
                    "once": sum(1 for c in per_mail if c == 1),
                    "statuses": ",".join(map(str, sorted(result["statuses"]))),
                    "pss": sampler.pss,
                    "rss": sampler.rss,
                    "threads": sampler.threads,
                    "startup": w.startup,
                    "first_startup": w.first_startup,
                }
            )
    return rows


def run_cpu(workdir: Path, n: int) -> dict[str, float]:
    with world(workdir, f"sqlite:///{workdir}/cpu.db", mails=0) as w, ThreadPoolExecutor(n + n // 4 + 1) as pool:
        warm = w.new_mails(n)  # a first burst makes the threads and connections a running bot already has
        w.mailpartner.sandbox.add_mails(warm)
        commands_then_clicks(w, pool, warm, [])
        mails = w.new_mails(n)
        w.mailpartner.sandbox.add_mails(mails)
        time.sleep(1.0)
        before = cpu_seconds(w.bot.proc.pid)
        result = commands_then_clicks(w, pool, mails, [])
        time.sleep(0.5)  # the last history rows are written
        used = cpu_seconds(w.bot.proc.pid) - before
        slack_calls = len(w.slack.calls)
        # The floor under it: what one request costs that does nothing of the bot's own. A full cancel
        # is two Slack requests (the command, the click).
        usage = [slash_command("help", user=USER, channel=CHANNEL, response_url="") for _ in range(n)]
        floor_slack = cpu_of(w, lambda: burst(pool, w.port, usage, [])) / n
        floor_http = cpu_of(w, lambda: list(pool.map(lambda _: health(w.port), range(n)))) / n
    return {
        "n": n,
        "per_cancel_ms": used / n * 1000,
        "cpu_s": used,
        "posted": result["posted"],
        "slack_calls": slack_calls,
        "floor_slack_ms": floor_slack * 1000,
        "floor_http_ms": floor_http * 1000,
    }


def run_steady(workdir: Path, n: int, in_flight: int, *, peer: str = "") -> dict[str, float]:
    """N full cancels, `in_flight` requests at a time (each worker asks, then confirms), default settings;
    `peer`: the same for one of PEERS."""
    defaults = {"LOG_LEVEL": "INFO"}  # the bot's own default: the log line of every request is in the cost
    database = f"sqlite:///{workdir}/steady-{time.monotonic_ns()}.db"
    with (
        world(workdir, database, mails=0, extra_env=defaults, peer=peer) as w,
        ThreadPoolExecutor(in_flight) as pool,
    ):
        urls: list[str] = []

        def cancel(mail: str) -> None:
            urls.append(url := w.slack.new_response_url())
            full_cancel(w.port, w.slack, mail, url)

        warm = w.new_mails(in_flight * 2)
        w.mailpartner.sandbox.add_mails(warm)
        list(pool.map(cancel, warm))
        mails = w.new_mails(n)
        w.mailpartner.sandbox.add_mails(mails)
        w.slack.wait_for(lambda c: c.payload.get("response_type") == "in_channel", count=len(warm), timeout=60)
        time.sleep(1.0)
        urls.clear()
        before, started = cpu_seconds(w.bot.proc.pid), time.monotonic()
        list(pool.map(cancel, mails))
        paths = {u.removeprefix(w.slack.url) for u in urls}
        posted = w.slack.wait_for(
            lambda c: c.path in paths and c.payload.get("response_type") == "in_channel", count=n, timeout=180
        )
        took = time.monotonic() - started
        time.sleep(0.5)
        used = cpu_seconds(w.bot.proc.pid) - before
    return {"n": n, "in_flight": in_flight, "per_cancel_ms": used / n * 1000, "posted": len(posted), "seconds": took}


def cpu_of(w: World, work: Callable[[], object]) -> float:
    before = cpu_seconds(w.bot.proc.pid)
    work()
    time.sleep(0.5)
    return cpu_seconds(w.bot.proc.pid) - before


def run_ratelimit(workdir: Path, per_channel: int) -> dict[str, Any]:
    channels = ("C0BENCHA00", "C0BENCHB00")
    with world(workdir, f"sqlite:///{workdir}/rl.db", mails=0) as w:
        w.slack.limit("chat.postMessage", every=1.0, burst=1)  # about one message a second per channel
        w.slack.limit("chat.update", every=60 / 50, burst=10, per_channel=False)  # Tier 3: 50+ a minute
        started = time.monotonic()
        threads: dict[str, str] = {}
        mails = w.new_mails(per_channel * len(channels))
        w.mailpartner.sandbox.add_mails(mails)
        for i, mail in enumerate(mails):
            channel = channels[i % 2]
            ts = f"{int(time.time())}.{i:06d}"
            threads[ts] = mail
            post(w.port, app_mention(f"<@U0BOT00000> cancel {mail}", user=USER, channel=channel, ts=ts), JSON)
        prompts = w.slack.wait_for(
            lambda c: c.method == "chat.postMessage" and "failed" not in c.response and buttons(c.payload),
            count=len(mails),
            timeout=300,
        )
        prompts_done = time.monotonic() - started
        clicked = time.monotonic()
        with ThreadPoolExecutor(len(prompts)) as pool:
            list(
                pool.map(
                    lambda c: post(
                        w.port,
                        button_click(
                            buttons(c.payload)["cancel_mail_confirm"],
                            user="U0BENCH001",
                            channel=c.payload["channel"],
                            response_url=w.slack.new_response_url(),
                            message_ts=str(c.response["ts"]),
                            thread_ts=c.payload["thread_ts"],
                        ),
                    ),
                    prompts,
                )
            )
        outcomes = w.slack.wait_for(
            lambda c: (
                c.method == "chat.postMessage"
                and "failed" not in c.response
                and "is cancelled" in blocks_text(c.payload)
            ),
            count=len(mails),
            timeout=600,
        )
        updates_done = w.slack.wait_for(
            lambda c: (
                c.method == "chat.update"
                and "failed" not in c.response
                and "confirmed cancelling" in blocks_text(c.payload)
            ),
            count=len(mails),
            timeout=600,
        )
        times = {ch: sorted(c.time - clicked for c in outcomes if c.payload["channel"] == ch) for ch in channels}
        per_channel_done = {ch: t[-1] if t else float("inf") for ch, t in times.items()}
        first_outcome = {ch: t[0] if t else float("inf") for ch, t in times.items()}
        return {
            "per_channel": per_channel,
            "prompts": len(prompts),
            "prompts_done": prompts_done,
            "outcomes": len(outcomes),
            "per_channel_done": per_channel_done,
            "first_outcome": first_outcome,
            "updates": len(updates_done),
            "updates_done": max((c.time - clicked for c in updates_done), default=float("inf")),
            "cancelled_once": sum(1 for m in mails if w.mailpartner.cancels[m] == 1),
            "rate_limited": w.slack.rate_limited,
            "log_lost": "post_failed" in w.bot.log(),
        }


def run_soak(workdir: Path, minutes: float, rate: float) -> dict[str, Any]:
    with world(workdir, f"sqlite:///{workdir}/soak.db", mails=0) as w:
        samples: list[tuple[float, float, float, int]] = []  # (t, pss, rss, fds)
        started = time.monotonic()
        stop = started + minutes * 60
        sent = 0
        lock = threading.Lock()
        failures: list[str] = []

        def one(mail: str) -> None:
            url = w.slack.new_response_url()
            _, _, status, body = post(w.port, slash_command(mail, user=USER, channel=CHANNEL, response_url=url))
            if status != 200:
                failures.append(f"command {status}")
                return
            prompt = answer_to(w.slack, url, json.loads(body))
            click_url = w.slack.new_response_url()
            _, _, status, _ = post(
                w.port,
                button_click(
                    buttons(prompt)["cancel_mail_confirm"], user=USER, channel=CHANNEL, response_url=click_url
                ),
            )
            if status != 200:
                failures.append(f"click {status}")

        next_sample = started
        with ThreadPoolExecutor(64) as pool:
            while (now := time.monotonic()) < stop:
                if now >= next_sample:
                    pss, rss = memory_mb(w.bot.proc.pid)
                    samples.append((now - started, pss, rss, open_files(w.bot.proc.pid)))
                    next_sample += 10
                due = int((now - started) * rate)
                while sent < due:
                    (mail,) = w.new_mails(1)
                    w.mailpartner.sandbox.add_mails([mail])
                    pool.submit(one, mail)
                    with lock:
                        sent += 1
                time.sleep(0.01)
        time.sleep(LATENCY + 2)
        posted = len([c for c in w.slack.calls if c.is_response_url and c.payload.get("response_type") == "in_channel"])
        pss, rss = memory_mb(w.bot.proc.pid)
        samples.append((time.monotonic() - started, pss, rss, open_files(w.bot.proc.pid)))
    after_first = [s for s in samples if s[0] >= 60] or samples
    base = after_first[0]
    return {
        "minutes": minutes,
        "rate": rate,
        "sent": sent,
        "posted": posted,
        "failures": len(failures),
        "samples": samples,
        "pss_growth": (max(s[1] for s in after_first) - base[1]) / base[1],
        "rss_growth": (max(s[2] for s in after_first) - base[2]) / base[2],
        "fd_growth": (max(s[3] for s in after_first) - base[3]) / max(1, base[3]),
    }


# -- report ------------------------------------------------------------------------------------------------


def report_burst(rows: list[dict[str, Any]], check: Callable[[str, bool], None]) -> None:
    print(f"\n### Burst: N commands then N confirms, MailPartner {LATENCY:g} s per call\n")
    print(
        "| store | N | ack p50 | ack p99 | ack max | /healthz p99 | click → outcome, max | last outcome after "
        "first click | posted | one MailPartner call per mail | HTTP | threads, peak | RSS, peak | start-up "
        "| first start |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['store']} | {r['n']} | {r['ack_p50'] * 1000:.0f} ms | {r['ack_p99'] * 1000:.0f} ms "
            f"| {r['ack_max'] * 1000:.0f} ms | {r['health_p99'] * 1000:.0f} ms | {r['outcome_max']:.2f} s "
            f"| {r['burst_span']:.2f} s | {r['posted']}/{r['n']} | {r['once']}/{r['n']} | {r['statuses']} "
            f"| {r['threads']} | {r['rss']:.0f} MB | {r['startup']:.2f} s | {r['first_startup']:.2f} s |"
        )
        tag = f"burst {r['store']} N={r['n']}"
        check(f"{tag}: no ack over {ACK_LIMIT:g} s", r["ack_max"] < ACK_LIMIT)
        check(f"{tag}: ack p99 within 1.5× the /healthz p99", r["ack_p99"] <= 1.5 * r["health_p99"])
        check(f"{tag}: every outcome within {LATENCY:g} s + 2 s of its click", r["outcome_max"] <= LATENCY + 2)
        check(f"{tag}: every outcome posted", r["posted"] == r["n"])
        check(f"{tag}: one MailPartner call per mail", r["once"] == r["n"])
        check(f"{tag}: at most 16 threads at the peak", r["threads"] <= 16)
        check(f"{tag}: at most 100 MB resident at the peak", r["rss"] <= 100)
        check(f"{tag}: start-up to a 200 on /healthz under 1 s", r["startup"] < 1.0)
        check(f"{tag}: first start (a new store migrated) to a 200 on /healthz under 1 s", r["first_startup"] < 1.0)


Round = dict[str, dict[str, float]]  # who ("the bot", or a peer's name) → its steady run


def run_versus(workdir: Path, n: int, in_flight: int, *, rounds: int) -> list[Round]:
    """The bot and its peers in turns, so that the machine's drift from one minute to the next hits all."""
    return [
        {"the bot": run_steady(workdir, n, in_flight)}
        | {name: run_steady(workdir, n, in_flight, peer=name) for name in PEERS}
        for _ in range(rounds)
    ]


def report_versus(rounds: list[Round], check: Callable[[str, bool], None]) -> None:
    bot = rounds[0]["the bot"]
    print(
        f"\n### Steady, against the peers\n\nWith default settings (LOG_LEVEL=INFO): {bot['n']} full cancels a "
        f"round, {bot['in_flight']} requests in flight, the bot and then each peer in each round.\n"
    )
    print("| round | the bot | sync starter | async starter | bot / sync | bot / async | took (bot / sync / async) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for i, run in enumerate(rounds, 1):
        ours, sync, asynchronous = run["the bot"], run["sync starter"], run["async starter"]
        to_sync, to_async = (ours["per_cancel_ms"] / p["per_cancel_ms"] for p in (sync, asynchronous))
        print(
            f"| {i} | {ours['per_cancel_ms']:.1f} ms | {sync['per_cancel_ms']:.1f} ms "
            f"| {asynchronous['per_cancel_ms']:.1f} ms | {to_sync:.2f} | {to_async:.2f} "
            f"| {ours['seconds']:.1f} / {sync['seconds']:.1f} / {asynchronous['seconds']:.1f} s |"
        )
        check(
            f"steady round {i}: every outcome posted, the bot's and each peer's",
            ours["posted"] == sync["posted"] == asynchronous["posted"],
        )
        check(f"steady round {i}: CPU per cancel within 1.3× the sync starter's", to_sync <= 1.3)
        check(f"steady round {i}: CPU per cancel within 1.6× the async starter's", to_async <= 1.6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("burst", "cpu", "ratelimit", "soak", "replicas"), action="append")
    parser.add_argument("--n", type=int, default=500, help="burst size (default 500)")
    parser.add_argument("--quick", action="store_true", help="N=100, 10 prompts a channel, a 1-minute soak")
    parser.add_argument("--no-postgres", action="store_true", help="the burst on SQLite only")
    args = parser.parse_args()
    parts = args.only or ["burst", "cpu", "ratelimit", "soak", "replicas"]
    n = 100 if args.quick else args.n
    results: list[tuple[str, bool]] = []

    def check(what: str, ok: bool) -> None:
        results.append((what, ok))

    print(f"{os.cpu_count()} cores; the load generator and both fakes share them with the bot.")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "burst" in parts:
            report_burst(run_burst(workdir, n, not args.no_postgres), check)
        if "cpu" in parts:
            cpu = run_cpu(workdir, 200)
            print(
                f"\n### CPU per cancel\n\nThe bot's CPU time (user + system, all its processes) for {cpu['n']} full "
                f"cancels (command, confirm, outcome), after a warm-up burst of as many: {cpu['cpu_s']:.2f} s, "
                f"**{cpu['per_cancel_ms']:.1f} ms per cancel**, with {cpu['slack_calls'] / (2 * cpu['n']):.1f} "
                "calls to Slack each."
            )
            print(
                f"\nThe floor under it, for as many requests at once: a signed `/cancel-mail help` (the front door, "
                f"Bolt, the usage text) costs {cpu['floor_slack_ms']:.2f} ms, a `GET /healthz` (the front door alone) "
                f"{cpu['floor_http_ms']:.2f} ms; a cancel is two Slack requests, "
                f"{2 * cpu['floor_slack_ms']:.1f} ms before the bot does anything of its own."
            )
            check("cpu: every outcome posted", cpu["posted"] == cpu["n"])
            report_versus(run_versus(workdir, 100 if args.quick else 200, 32, rounds=2), check)
        if "ratelimit" in parts:
            rl = run_ratelimit(workdir, 10 if args.quick else 30)
            a, b = rl["per_channel_done"].values()
            fa, fb = rl["first_outcome"].values()
            print(
                f"\n### Rate-limited Slack\n\n{rl['per_channel']} thread prompts in each of two channels, "
                "Slack allowing one chat.postMessage a second per channel and chat.update at Tier 3 (50 a minute, "
                "bursts of 10); every prompt confirmed at once.\n"
            )
            print(
                "| prompts posted | outcomes posted | first / last outcome, channel A "
                '| first / last outcome, channel B | prompts updated ("confirmed") | 429s answered | post_failed |'
            )
            print("|---:|---:|---:|---:|---:|---:|---|")
            print(
                f"| {rl['prompts']} in {rl['prompts_done']:.0f} s | {rl['outcomes']}/{2 * rl['per_channel']} "
                f"| {fa:.1f} / {a:.1f} s | {fb:.1f} / {b:.1f} s | {rl['updates']} by {rl['updates_done']:.0f} s "
                f"| {rl['rate_limited']} | {'yes' if rl['log_lost'] else 'none'} |"
            )
            check(
                "ratelimit: every prompt and every outcome delivered",
                rl["prompts"] == rl["outcomes"] == 2 * rl["per_channel"],
            )
            check("ratelimit: none lost", not rl["log_lost"] and rl["cancelled_once"] == 2 * rl["per_channel"])
            check(
                "ratelimit: channel B not slowed by channel A (each at its own one a second)",
                max(a, b) < rl["per_channel"] * 1.6 + 5,
            )
        if "soak" in parts:
            soak = run_soak(workdir, 1.0 if args.quick else 10.0, 5.0)
            print(f"\n### Soak: {soak['rate']:g} cancels a second for {soak['minutes']:g} minutes\n")
            print("| minute | PSS | RSS | open files |")
            print("|---:|---:|---:|---:|")
            for t, pss, rss, fds in soak["samples"]:
                if int(t) % 60 < 10 or t == soak["samples"][-1][0]:
                    print(f"| {t / 60:.1f} | {pss:.0f} MB | {rss:.0f} MB | {fds} |")
            print(
                f"\n{soak['sent']} cancels sent, {soak['posted']} outcomes posted, {soak['failures']} failed requests; "
                f"growth after the first minute: PSS {soak['pss_growth']:+.1%}, RSS {soak['rss_growth']:+.1%}, "
                f"open files {soak['fd_growth']:+.1%}."
            )
            check("soak: every outcome posted", soak["posted"] == soak["sent"] and not soak["failures"])
            check(
                "soak: memory flat (under 10 % growth after the first minute)",
                soak["rss_growth"] < 0.10 and soak["pss_growth"] < 0.10,
            )
            check("soak: open files flat", soak["fd_growth"] < 0.10)
        if "replicas" in parts:
            from replicas import report_replicas, run_replicas

            report_replicas(run_replicas(workdir, 300 if args.quick else 1500), check)
    missed = [what for what, ok in results if not ok]
    print("\nTargets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
