"""Slack down right after confirms: how long after its return every outcome is in the channel, and how often.

    python bench/outage.py [--confirms 20] [--down 120] [--restart]

The bot runs as `python -m bot` in HTTP mode with its default settings, on loopback, beside a local Slack and
a local MailPartner. It confirms N cancels, Slack goes down (HTTP 503 to everything) for `--down` seconds
from the first click, then comes back. With `--restart`, the bot is stopped (SIGTERM: its drain hands the
owed messages back) while Slack is down, and another process is started at once, Slack still down.
Prints when each outcome arrived after Slack's return, and how many times each was posted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.console.local_slack import LocalSlack, SlackCall
from bot.console.wire import blocks_text
from tests.fakes import BotProcess, FakeMailPartner, bot_env, free_port
from tests.test_e2e import BOB, Driver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--confirms", type=int, default=20)
    parser.add_argument("--down", type=float, default=120.0)
    parser.add_argument("--restart", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cancel-mail-outage-"))
    slack, mailpartner = LocalSlack().start(), FakeMailPartner(extra_mails=args.confirms).start()
    env = bot_env(free_port(), slack.api_url, mailpartner.base_url, DATABASE_URL=f"sqlite:///{tmp}/bot.db")
    started = [BotProcess(env, tmp / "bot-0.log")]
    try:
        started[0].wait_healthy()
        driver = Driver(started[0], slack)
        mails = [f"m{i:04d}" for i in range(args.confirms)]
        prompts = [driver.command(mail)[1] for mail in mails]
        slack.outage(args.down, "503")
        urls = [driver.click(prompt, user=BOB)[1] for prompt in prompts]
        if args.restart:
            time.sleep(5)
            stopping = time.monotonic()
            started[0].stop(120)
            print(
                f"stopped during the outage in {time.monotonic() - stopping:.1f} s; "
                f"its log says: {last_line(started[0], 'shutdown')}"
            )
            started.append(BotProcess(env, tmp / "bot-1.log"))
            started[-1].wait_healthy(120)
            print(f"another started, Slack still down; its log says: {last_line(started[-1], 'Slack is')}")
        time.sleep(max(0.0, slack.down_until - time.monotonic()))
        back = time.monotonic()
        print(f"Slack back after {args.down:.0f} s down; {slack.refused_in_outage} calls refused meanwhile")
        arrived = []
        for url in urls:
            path = url.removeprefix(slack.url)
            found = slack.wait_for(lambda c, p=path: outcome_at(c, p), timeout=120)
            arrived.append(found[0].time - back if found else None)
        time.sleep(2)  # a second post, if any, would come now
        posts = [len([c for c in slack.calls if outcome_at(c, url.removeprefix(slack.url))]) for url in urls]
        got = [a for a in arrived if a is not None]
        print(f"outcomes in the channel: {len(got)}/{len(urls)}; posted once each: {posts.count(1)}/{len(urls)}")
        if got:
            print(f"after Slack's return: first {min(got):.1f} s, last {max(got):.1f} s")
        print(f"MailPartner cancel calls: {len(mailpartner.requests)} for {len(mails)} mails")
        cancelled = sum(
            1
            for url in urls
            for c in slack.calls
            if c.path == url.removeprefix(slack.url) and "is cancelled" in blocks_text(c.payload)
        )
        return 0 if len(got) == len(urls) and posts.count(1) == len(urls) and cancelled == len(urls) else 1
    finally:
        for bot in started:
            bot.stop()
        mailpartner.stop()
        slack.stop()


def outcome_at(call: SlackCall, path: str) -> bool:
    """An outcome Slack took at this response_url (the prompt's "confirmed" update goes there too)."""
    return call.path == path and "failed" not in call.response and call.payload.get("response_type") == "in_channel"


def last_line(bot: BotProcess, word: str) -> str:
    lines = [line for line in bot.log().splitlines() if word in line]
    return lines[-1].split(": ", 1)[-1] if lines else "(nothing)"


if __name__ == "__main__":
    sys.exit(main())
