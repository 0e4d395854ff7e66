"""The replicas part of the benchmark: three `python -m bot` replicas on one PostgreSQL behind HAProxy (the
shipped deploy/haproxy.cfg, pointed at loopback), N commands then their N confirms through the balancer, one
replica SIGKILLed or sent SIGTERM a moment into the clicks; then one replica alone behind the same balancer,
for the CPU a cancel costs without sharing.

Each run reports: the ack max, failed requests (not a 200, or no answer), the survivors' last outcome after
the first click (outcomes not taken over), how many cancels were taken over and when the last of them was
posted, MailPartner calls per mail, and the CPU per cancel summed over the replicas, from the first command
until the last outcome (after a SIGKILL that includes some 40 s of idle replicas waiting for the dead one's
leases to run out, so the like-for-like comparison with one replica is the run where nothing is stopped).

    python bench/load.py --only replicas            # part of `make bench`
    python bench/replicas.py --n 300                # this part alone, another size
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import ACK_LIMIT, CHANNEL, LATENCY, USER, cpu_seconds, post

from bot.console.local_slack import LocalSlack
from bot.console.wire import blocks_text, button_click, buttons, slash_command
from tests.databases import postgres_problem, postgres_schema, postgres_url
from tests.fakes import ROOT, BotProcess, FakeMailPartner, answer_to, bot_env, free_port

REPLICAS = 3
RECOVERED = "Recovered after an interruption"


@dataclass(frozen=True)
class Scenario:
    name: str
    replicas: int
    stop: signal.Signals | None = None  # sent to the first replica…
    at: float = 0.0  # …this many seconds into the clicks


SCENARIOS = (
    Scenario("SIGKILL 0.05 s into the clicks", REPLICAS, signal.SIGKILL, 0.05),
    Scenario("SIGKILL 1 s into the clicks", REPLICAS, signal.SIGKILL, 1.0),
    Scenario("SIGKILL 3 s into the clicks", REPLICAS, signal.SIGKILL, 3.0),
    Scenario("SIGTERM 1 s into the clicks", REPLICAS, signal.SIGTERM, 1.0),
    Scenario("nothing stopped", REPLICAS),
    Scenario("one replica, nothing stopped", 1),
)


def haproxy_config(port: int, servers: list[int]) -> str:
    """deploy/haproxy.cfg as shipped, its listener and servers on loopback instead of Docker's DNS."""
    shipped = (ROOT / "deploy" / "haproxy.cfg").read_text()
    config = re.sub(r"(?ms)^resolvers docker\n.*?\n\n", "", shipped)  # no Docker DNS here
    config = config.replace("bind :3000", f"bind 127.0.0.1:{port}")
    config = config.replace(" init-addr none resolvers docker", "")
    lines = "\n".join(f"    server bot{i} 127.0.0.1:{p}" for i, p in enumerate(servers))
    return re.sub(r"(?m)^    server-template .*$", lines, config)


@contextlib.contextmanager
def balancer(workdir: Path, servers: list[int]) -> Iterator[int]:
    """HAProxy in the foreground on a port of its own, until the block ends."""
    port = free_port()
    config = workdir / f"haproxy-{port}.cfg"
    config.write_text(haproxy_config(port, servers))
    log = (workdir / f"haproxy-{port}.log").open("wb")
    process = subprocess.Popen([shutil.which("haproxy") or "haproxy", "-db", "-f", str(config)], stdout=log, stderr=log)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def healthy_behind(port: int, count: int, timeout: float = 20.0) -> None:
    """Wait until the balancer has seen every replica's /healthz answer (rise 2: two checks a second apart)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered = Counter()
        for _ in range(count * 2):
            with contextlib.suppress(OSError):
                answered[post_health(port)] += 1
        if answered.get(200, 0) == count * 2:
            time.sleep(2.5)  # rise 2, one check a second: every server is in the pool now
            return
        time.sleep(0.2)
    raise RuntimeError("the balancer never answered /healthz")


def post_health(port: int) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    finally:
        conn.close()


def safe_post(port: int, body: str) -> tuple[float, float, int, bytes]:
    """`post`, with a request that got no answer at all (a reset, a refused connection) as status 0."""
    started = time.monotonic()
    try:
        return post(port, body)
    except OSError:
        return started, time.monotonic() - started, 0, b""


def run_scenario(workdir: Path, database_url: str, n: int, scenario: Scenario) -> dict[str, Any]:
    slack = LocalSlack().start()
    mailpartner = FakeMailPartner(delay=LATENCY).start()
    bots: list[BotProcess] = []
    try:
        for i in range(scenario.replicas):
            env = bot_env(
                free_port(),
                slack.api_url,
                mailpartner.base_url,
                DATABASE_URL=database_url,
                LOG_LEVEL="WARNING",
                MAILPARTNER_TIMEOUT=str(LATENCY + 5),
            )
            env.pop("CANCEL_MAIL_DRAIN_GRACE")  # the default grace: a balancer is in front
            bots.append(BotProcess(env, workdir / f"replica-{i}-{time.monotonic_ns()}.log"))
        for bot in bots:
            bot.wait_healthy(30)
        with balancer(workdir, [b.port for b in bots]) as port:
            healthy_behind(port, len(bots))
            return drive(port, slack, mailpartner, bots, n, scenario)
    finally:
        for bot in bots:
            bot.stop(90)
        mailpartner.stop()
        slack.stop()


def drive(
    port: int,
    slack: LocalSlack,
    mailpartner: FakeMailPartner,
    bots: list[BotProcess],
    n: int,
    scenario: Scenario,
) -> dict[str, Any]:
    mails = [f"r{i:05d}" for i in range(n)]
    mailpartner.sandbox.add_mails(mails)
    with ThreadPoolExecutor(n + 1) as pool:
        asked = [slack.new_response_url() for _ in mails]
        commands = list(
            pool.map(
                lambda pair: safe_post(port, slash_command(pair[0], user=USER, channel=CHANNEL, response_url=pair[1])),
                zip(mails, asked, strict=True),
            )
        )
        prompts = {
            mail: answer_to(slack, url, json.loads(body))
            for mail, url, (*_, status, body) in zip(mails, asked, commands, strict=True)
            if status == 200
        }
        clickable = [m for m in mails if "cancel_mail_confirm" in buttons(prompts.get(m, {}))]
        urls = {m: slack.new_response_url() for m in clickable}
        before = [cpu_seconds(b.proc.pid) for b in bots]
        victim_cpu: list[float] = []
        clicks_start = threading.Event()

        def stop_one() -> None:
            clicks_start.wait()
            time.sleep(scenario.at)
            victim_cpu.append(cpu_seconds(bots[0].proc.pid))  # what it used, before it is gone
            with contextlib.suppress(ProcessLookupError):
                os.killpg(bots[0].proc.pid, scenario.stop)  # type: ignore[arg-type]

        stopper = threading.Thread(target=stop_one, daemon=True) if scenario.stop else None
        if stopper:
            stopper.start()

        def click(mail: str) -> tuple[float, float, int, bytes]:
            button = buttons(prompts[mail])["cancel_mail_confirm"]
            return safe_post(port, button_click(button, user=USER, channel=CHANNEL, response_url=urls[mail]))

        futures = []
        clicks_start.set()
        for mail in clickable:
            futures.append(pool.submit(click, mail))
        clicks = {m: f.result() for m, f in zip(clickable, futures, strict=True)}
        if stopper:
            stopper.join()
    first_click = min(sent for sent, *_ in clicks.values())
    acked = {m for m, (*_, status, _) in clicks.items() if status == 200}
    paths = {urls[m].removeprefix(slack.url): m for m in acked}
    # A takeover waits for the job's lease (MAILPARTNER_DEADLINE + 5 s) and the replica's heartbeat.
    posted = slack.wait_for(
        lambda c: c.path in paths and c.payload.get("response_type") == "in_channel", count=len(acked), timeout=180
    )
    time.sleep(1.0)  # a second outcome for one click would show by now
    posted = [c for c in slack.calls if c.path in paths and c.payload.get("response_type") == "in_channel"]
    per_click = Counter(paths[c.path] for c in posted)
    recovered = [c for c in posted if RECOVERED in blocks_text(c.payload)]
    survivors = [c for c in posted if RECOVERED not in blocks_text(c.payload)]
    calls = Counter(r["messageId"] for r in mailpartner.requests)
    taken = {paths[c.path] for c in recovered}
    used = [cpu_seconds(b.proc.pid) - t for b, t in zip(bots, before, strict=True)]
    if scenario.stop is signal.SIGKILL and victim_cpu:
        used[0] = victim_cpu[0] - before[0]
    every = [t for _, t, *_ in commands] + [t for _, t, *_ in clicks.values()]
    answered = [t for (_, t, status, _) in [*commands, *clicks.values()] if status]
    return {
        "scenario": scenario.name,
        "replicas": scenario.replicas,
        "n": n,
        "requests": len(every),
        "failed": sum(1 for (*_, status, _) in [*commands, *clicks.values()] if status != 200),
        "failed_as": ", ".join(
            f"{status or 'no answer'} ×{count}"
            for status, count in sorted(Counter(s for (*_, s, _) in [*commands, *clicks.values()] if s != 200).items())
        ),
        "ack_max": max(answered, default=float("inf")),
        "acks_over_limit": sum(1 for t in answered if t >= ACK_LIMIT),
        "clicked": len(clickable),
        "acked": len(acked),
        "one_outcome": sum(1 for m in acked if per_click[m] == 1),
        "survivors_last": max((c.time for c in survivors), default=first_click) - first_click,
        "taken_over": len(taken),
        "taken_last": max((c.time for c in recovered), default=first_click) - first_click,
        "twice_not_taken": sum(1 for m in acked if calls[m] > 1 and m not in taken),
        "max_calls": max((calls[m] for m in acked), default=0),
        "cpu_per_cancel_ms": sum(used) / max(1, len(acked)) * 1000,
    }


def run_replicas(workdir: Path, n: int, scenarios: tuple[Scenario, ...] = SCENARIOS) -> list[dict[str, Any]]:
    """Every scenario, each on a fresh schema of the test PostgreSQL; none when HAProxy or PostgreSQL is
    missing (said why)."""
    if not shutil.which("haproxy"):
        print("(replicas skipped: haproxy is not installed; `apt-get install haproxy` brings it)")
        return []
    if problem := postgres_problem(postgres_url()):
        print(f"(replicas skipped: {problem})")
        return []
    rows = []
    for scenario in scenarios:
        with postgres_schema() as url:
            rows.append(run_scenario(workdir, url, n, scenario))
    return rows


def report_replicas(rows: list[dict[str, Any]], check: Callable[[str, bool], None]) -> None:
    if not rows:
        return
    n = rows[0]["n"]
    print(
        f"\n### Replicas: {REPLICAS} on PostgreSQL behind HAProxy, {n} commands then their confirms, MailPartner "
        f"{LATENCY:g} s per call\n"
    )
    print(
        "| run | ack max | acks ≥ 3 s | failed requests | acked clicks | one outcome each | survivors' last "
        "outcome | taken over | last taken over | MailPartner calls per mail, max | CPU per cancel, all replicas |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['ack_max'] * 1000:.0f} ms | {r['acks_over_limit']} "
            f"| {r['failed']}/{r['requests']}{' (' + r['failed_as'] + ')' if r['failed_as'] else ''} "
            f"| {r['acked']}/{r['clicked']} | {r['one_outcome']}/{r['acked']} | {r['survivors_last']:.2f} s "
            f"| {r['taken_over']} | {r['taken_last']:.1f} s | {r['max_calls']} | {r['cpu_per_cancel_ms']:.1f} ms |"
        )
    single = next((r for r in rows if r["replicas"] == 1), None)
    for r in rows:
        tag = f"replicas, {r['scenario']}"
        check(f"{tag}: no ack at {ACK_LIMIT:g} s or more", r["acks_over_limit"] == 0)
        check(f"{tag}: every acked click exactly one outcome", r["one_outcome"] == r["acked"])
        check(f"{tag}: MailPartner asked twice only for cancels taken over", r["twice_not_taken"] == 0)
        if r["replicas"] > 1:
            check(f"{tag}: the survivors' outcomes within 6 s of the first click", r["survivors_last"] <= 6.0)
        if r["scenario"].startswith("SIGTERM"):
            check(f"{tag}: no failed request", r["failed"] == 0)
        if single is not None and r is not single and r["scenario"] == "nothing stopped":
            check(
                f"{tag}: CPU per cancel over the replicas within 1.15× one replica's",
                r["cpu_per_cancel_ms"] <= 1.15 * single["cpu_per_cancel_ms"],
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1500, help="commands, then as many confirms (default 1500)")
    args = parser.parse_args()
    results: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory() as tmp:
        report_replicas(run_replicas(Path(tmp), args.n), lambda what, ok: results.append((what, ok)))
    missed = [what for what, ok in results if not ok]
    print("\nTargets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
