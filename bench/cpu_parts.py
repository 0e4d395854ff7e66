"""Where a cancel's CPU goes: the bot under cProfile for the steady run's load, its own time summed by part.

    python bench/cpu_parts.py [--n 200] [--in-flight 32]

`python -m bot` in HTTP mode with its default settings (and its store on SQLite), a local fake Slack and a
fake MailPartner, as bench/load.py's steady run: N full cancels (command, confirm, outcome), 32 requests in
flight. The process runs under cProfile, whose own cost inflates every figure alike: read the shares, not
the milliseconds. It times CPU, not the wall: waiting costs nothing. Each function's own time (not its
callees') goes to the part its module belongs to; a built-in's, to what its name says it does.
"""

from __future__ import annotations

import argparse
import pstats
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import LATENCY, full_cancel

from bot.console.local_slack import LocalSlack
from tests.fakes import BotProcess, FakeMailPartner, bot_env, free_port

# The parts, first match wins: a path fragment of the function's file → the part it counts to.
PARTS = (
    ("/bot/store/", "the store (the bot's queries)"),
    ("/bot/outbound/", "messages to Slack (outbox, ledger)"),
    ("/bot/mailpartner/", "MailPartner's client"),
    ("/bot/inbound/", "listeners and access"),
    ("/bot/words/", "rendering"),
    ("/bot/", "the rest of the bot"),
    ("/slack_bolt/", "Bolt's dispatch"),
    ("/slack_sdk/", "slack_sdk (signature, Web API reads)"),
    ("/httpx_aiohttp/", "HTTP out (httpx, aiohttp's pools)"),
    ("/httpx/", "HTTP out (httpx, aiohttp's pools)"),
    ("/httpcore/", "HTTP out (httpx, aiohttp's pools)"),
    ("/aiohttp/web", "HTTP in (aiohttp's server)"),
    ("/aiohttp/", "HTTP out (httpx, aiohttp's pools)"),
    ("/sqlalchemy/", "the store (SQLAlchemy, aiosqlite)"),
    ("/aiosqlite/", "the store (SQLAlchemy, aiosqlite)"),
    ("/logging/", "logging"),
    ("/pythonjsonlogger/", "logging"),
    ("/json/", "JSON"),
    ("/asyncio/", "the event loop (asyncio)"),
    ("/importlib/", "start-up (imports)"),
    ("/re/_", "start-up (imports)"),  # patterns compiled as modules load
    ("/selectors.py", "the event loop (asyncio)"),
    ("/tenacity/", "retries (tenacity)"),
    ("/prometheus_client/", "metrics"),
)


# Built-in (C) functions, by what their name says they do.
BUILT_INS = (
    (("marshal", "compile", "__build_class__", "exec"), "start-up (imports)"),
    (("epoll", "select", "contextvars", "SimpleQueue"), "the event loop (asyncio)"),
    (("socket", "send", "recv", "connect", "accept", "ssl"), "sockets (system calls)"),
    (("sqlite3",), "the store (SQLAlchemy, aiosqlite)"),
    (("hmac", "sha", "digest"), "signature checks"),
    (("json", "loads", "dumps"), "JSON"),
)

# The bot under cProfile timing CPU (not wall) time: waiting in epoll costs nothing, as it should.
PROFILED = """
import cProfile, os, runpy, sys, time
profiler = cProfile.Profile(time.process_time)
sys.argv = ["bot"]
profiler.enable()
try:
    runpy.run_module("bot", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats(os.environ["PROFILE_TO"])
"""


def part_of(filename: str, name: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return next((part for words, part in BUILT_INS if any(w in name for w in words)), "other built-ins")
    return next((part for fragment, part in PARTS if fragment in filename), "other libraries")


def profile(n: int, in_flight: int) -> tuple[dict[str, float], float, list[tuple[float, str]]]:
    """Each part's own CPU seconds for `n` cancels, the process's total, and every function's own time."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir, stats_path = Path(tmp), Path(tmp) / "bot.prof"
        slack, mailpartner = LocalSlack().start(), FakeMailPartner(delay=LATENCY).start()
        port = free_port()
        env = bot_env(port, slack.api_url, mailpartner.base_url, MAILPARTNER_TIMEOUT=str(LATENCY + 5))
        env.pop("LOG_LEVEL")  # the bot's default, as the steady run keeps it
        env.update({"DATABASE_URL": f"sqlite:///{workdir}/profile.db", "PROFILE_TO": str(stats_path)})
        command = ("-c", PROFILED)
        bot = BotProcess(env, workdir / "bot.log", command)
        try:
            bot.wait_healthy(30)
            mails = [f"p{i:05d}" for i in range(n)]
            mailpartner.sandbox.add_mails(mails)

            with ThreadPoolExecutor(in_flight) as pool:
                list(pool.map(lambda mail: full_cancel(port, slack, mail, slack.new_response_url()), mails))
            slack.wait_for(lambda c: c.payload.get("response_type") == "in_channel", count=n, timeout=120)
            time.sleep(0.5)
        finally:
            bot.stop(60)  # the drain ends the process normally: cProfile writes its file then
            mailpartner.stop()
            slack.stop()
        stats = pstats.Stats(str(stats_path))
    parts: dict[str, float] = {}
    functions: list[tuple[float, str]] = []
    for (filename, line, name), (_calls, _primitive, own, _cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        part = part_of(filename, name)
        parts[part] = parts.get(part, 0.0) + own
        functions.append((own, f"{name} ({'/'.join(filename.split('/')[-2:])}:{line})"))
    return parts, sum(parts.values()), sorted(functions, reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="full cancels (default 200)")
    parser.add_argument("--in-flight", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--top", type=int, default=15, help="the functions with the most own time (default 15)")
    args = parser.parse_args()
    parts, total, functions = profile(args.n, args.in_flight)
    print(f"\n### Where a cancel's CPU goes (cProfile, {args.n} cancels, {args.in_flight} in flight)\n")
    print("| part | share | own time per cancel, profiled |")
    print("|---|---:|---:|")
    for part, seconds in sorted(parts.items(), key=lambda item: -item[1]):
        print(f"| {part} | {seconds / total:.0%} | {seconds / args.n * 1000:.2f} ms |")
    print(f"\nIn all {total / args.n * 1000:.1f} ms a cancel under the profiler (start-up and drain included).")
    print(f"\nThe {args.top} functions with the most own time:\n")
    for own, where in functions[: args.top]:
        print(f"- {own / args.n * 1000:.2f} ms a cancel: `{where}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
