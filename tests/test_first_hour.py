"""A newcomer's first hour: the README's walk-through as typed, typing mistakes, first-run messages."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.console.wire import blocks_text, buttons
from bot.inbound.forms import ids_in_message
from bot.requests.commands import (
    CancelRequest,
    UsageReason,
    UsageRequest,
    parse_fields,
    parse_mention,
    parse_slash_command,
)
from bot.words.blocks import history_message
from bot.words.terminal import terminal_text
from tests.conftest import Harness
from tests.fakes import ROOT, outside_env

# Runs `python -m bot console` with the clock 10 minutes on from the moment the sandbox was made: the
# README's walk-through must read the same however long the console has been open.
LATE_CONSOLE = """
import runpy, sys, time
real, shift = time.time, [0.0]
time.time = lambda: real() + shift[0]
import bot.mailpartner.sandbox as sandbox
made = sandbox.MailPartnerSandbox.__init__
def made_then_later(self, *args, **kwargs):
    made(self, *args, **kwargs)
    shift[0] = 600.0
sandbox.MailPartnerSandbox.__init__ = made_then_later
sys.argv = ["bot", "console"]
runpy.run_module("bot", run_name="__main__")
"""


def readme_walkthrough() -> list[str]:
    """The quick start's console transcript, line by line."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```\ncancel-mail console:", 1)[1].split("```", 1)[0]
    return ("cancel-mail console:" + block).rstrip("\n").splitlines()


def typed(transcript: list[str]) -> str:
    """What the person types in that transcript: commands after `> ` and answers to `confirm or keep?`."""
    inputs = []
    for line in transcript:
        if line.startswith("> "):
            inputs.append(line[2:])
        elif line.startswith("confirm or keep? "):
            inputs.append(line.removeprefix("confirm or keep? "))
    return "\n".join(inputs) + "\nquit\n"


def test_readme_walkthrough_matches_the_console_ten_minutes_after_start_up(tmp_path: Path) -> None:
    transcript = readme_walkthrough()
    result = subprocess.run(
        [sys.executable, "-c", LATE_CONSOLE],
        input=typed(transcript),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**outside_env(), "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    screen = [re.sub(r"expires in \d+ min", "expires in 15 min", line) for line in result.stdout.splitlines()]
    # Every line the README shows is on the screen, in the README's order; `...` stands for lines left out.
    at = 0
    for line in transcript:
        if line.strip() in ("...", "…"):
            continue
        wanted = line.replace("> ", "", 1) if line.startswith("> ") else line
        found = next((i for i in range(at, len(screen)) if screen[i].endswith(wanted.rstrip())), None)
        assert found is not None, f"README line not on screen (in order): {line!r}\n--- screen ---\n{result.stdout}"
        at = found + 1


def test_readme_two_person_walkthrough_matches_the_console(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("With the two-person rule on:\n\n```\n", 1)[1].split("```", 1)[0]
    transcript = block.rstrip("\n").splitlines()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console"],
        input=typed(transcript),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**outside_env(), "MAILPARTNER_SANDBOX": "true", "CANCEL_MAIL_REQUIRE_SECOND_PERSON": "true"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    screen = result.stdout.splitlines()
    at = 0
    for line in transcript:
        if line.strip() in ("...", "…"):
            continue
        wanted = line.replace("> ", "", 1) if line.startswith("> ") else line
        wanted = wanted.removeprefix("confirm or keep? ")
        found = next((i for i in range(at, len(screen)) if screen[i].endswith(wanted.rstrip())), None)
        assert found is not None, f"README line not on screen (in order): {line!r}\n--- screen ---\n{result.stdout}"
        at = found + 1


def test_console_shows_the_prompt_update_before_the_outcome(tmp_path: Path) -> None:
    """In a terminal the click's effect reads before the outcome, every time (the outbox may send it later)."""
    confirms = "".join(f"/cancel-mail {mail}\nconfirm\n" for mail in ("300", "301", "302", "303", "brand-b:310", "999"))
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console"],
        input=confirms + "@bot cancel brand-b:301\nconfirm\nquit\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=outside_env(),
        timeout=120,
    )
    lines = result.stdout.splitlines()
    # After each click, the first thing shown is the prompt's new text; the outcome follows it.
    clicks = [i for i, line in enumerate(lines) if line.endswith("confirm or keep? confirm")]
    assert len(clicks) == 7, result.stdout
    for click in clicks:
        shown = [line for line in lines[click + 1 :] if line.startswith("[")][:2]
        assert shown[0].startswith("[prompt now reads]"), result.stdout
        assert shown[1].startswith(("[channel sees]", "[thread sees]")), result.stdout


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("302 --wrong list", "302 -- wrong list"),
        ("302 wrong list", "302 -- wrong list"),
        ("300 301 because of the segment", "300 301 -- because of the segment"),
    ],
)
def test_a_reason_typed_without_its_mark_never_becomes_mail_ids(text: str, offending: str) -> None:
    assert parse_slash_command(text) == UsageRequest(UsageReason.REASON_UNMARKED, offending)
    assert parse_mention(f"<@U0BOT00000> cancel {text}") == UsageRequest(UsageReason.REASON_UNMARKED, offending)
    assert isinstance(parse_fields(text, ""), UsageRequest)


def test_ids_never_start_with_a_dash_and_plain_ids_still_work() -> None:
    assert parse_slash_command("--302") == UsageRequest(UsageReason.INVALID_ID, "--302")
    assert parse_slash_command("300 abc-1 -- why") == CancelRequest(("300", "abc-1"), "why")
    assert parse_slash_command("campaign-a campaign-b") == CancelRequest(("campaign-a", "campaign-b"))


def test_unmarked_reason_gets_usage_with_the_reason_syntax_and_no_call(harness: Harness) -> None:
    _, message = harness.command("302 --wrong list")
    assert not buttons(message)
    assert "`302 -- wrong list`" in message["text"] and "/cancel-mail help" in message["text"]
    harness.settle()
    assert harness.mailpartner.requests == []


def test_mention_without_cancel_says_so(harness: Harness) -> None:
    assert parse_mention("<@U0BOT00000> 302") == UsageRequest(UsageReason.VERB_MISSING, "302")
    harness.mention("<@U0BOT00000> 302")
    harness.settle()
    (post,) = harness.slack.of("chat.postMessage")
    assert "Say `cancel` before the ids: `@cancel-mail cancel 302`" in post.payload["text"]
    assert "I don't know" not in post.payload["text"] and harness.mailpartner.requests == []


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("Please stop mails 301 and 305", ["301", "305"]),
        ("mails 301, 302 and 305 went to the wrong list", ["301", "302", "305"]),
        ("Arrêtez les mails 301, 302 et 305 !", ["301", "302", "305"]),
        ("the mail id: 4711 must not go", ["4711"]),
        ("stop messageId 301 now", ["301"]),
        ("courriel n° 42", ["42"]),
        ("send 3 mails at 10:30 in 5 minutes", []),
        ("the mail goes out in 5 minutes", []),
        ("mail 12/05 at 10h30", []),
        ('Oops: campaign {"messageId": "302"} went to `301` too', ["302", "301"]),
    ],
)
def test_message_shortcut_finds_ids_in_plain_sentences(text: str, ids: list[str]) -> None:
    assert ids_in_message(text) == ids


def test_bulk_prompt_says_mails_and_the_summary_names_the_confirmer_once(harness: Harness) -> None:
    _, prompt = harness.command("300 301 302")
    assert "Cancel scheduled mails `300`, `301`, `302` at MailPartner?" in blocks_text(prompt)
    harness.click(prompt)
    harness.settle()
    (summary,) = [c.payload for c in harness.slack.calls if "Totals" in blocks_text(c.payload)]
    assert blocks_text(summary).count("Confirmed by") == 1 and "confirmed by" not in blocks_text(summary)


def test_history_says_when_there_are_more_and_how_to_see_them(harness: Harness, mocker) -> None:
    for _ in range(5):  # a request and a keep each: 10 events, then the history's own
        _, prompt = harness.command("301")
        harness.click(prompt, "keep")
    harness.settle()
    shown = harness.run(harness.bot.store.history(channel="C0ONCALL00", limit=50)) or []
    assert len(shown) == 10
    few = blocks_text(history_message(shown, lang="en", limit=20))
    assert few.count("• ") == 10 and "there are more" not in few
    many = blocks_text(history_message(shown, lang="en", limit=8))
    assert many.count("• ") == 8 and "there are more" in many and "python -m bot history" in many
    harness.command("history")
    harness.settle()
    answer = blocks_text(harness.slack.calls[-1].payload)
    assert answer.count("• ") == 10 and "there are more" not in answer
    mocker.patch("bot.inbound.listeners.base.HISTORY_LIMIT", 8)
    harness.command("history")
    harness.settle()
    answer = blocks_text(harness.slack.calls[-1].payload)
    assert answer.count("• ") == 8 and "there are more" in answer


def test_terminal_names_the_console_channel() -> None:
    assert terminal_text("in <#C0CONSOLE1>", channels={"C0CONSOLE1": "on-call"}) == "in #on-call"


def test_console_history_names_the_channel_as_the_banner_does(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console"],
        input="/cancel-mail 301\nkeep\n/cancel-mail history 301\nquit\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=outside_env(),
        timeout=60,
    )
    assert "you are @you in #on-call" in result.stdout
    assert "· #on-call ·" in result.stdout and "C0CONSOLE1" not in result.stdout


def test_newcomer_errors_point_to_env_example_and_the_sandbox(tmp_path: Path) -> None:
    env = outside_env()
    check = subprocess.run(
        [sys.executable, "-m", "bot", "check"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
    )
    cancel = subprocess.run(
        [sys.executable, "-m", "bot", "cancel", "300"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    for said in (check.stdout, cancel.stderr):
        assert ".env.example" in said and "MAILPARTNER_SANDBOX=true" in said, said
    assert "cannot start" not in cancel.stderr and cancel.returncode == 2


def test_readme_setup_copies_env_example_before_asking_for_the_key() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Slack app setup", 1)[1].split("\n## ", 1)[0]
    assert setup.index("cp .env.example .env") < setup.index("MAILPARTNER_API_KEY")


def test_first_install_says_what_it_does_and_builds_without_deprecations() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str)  # a table is deprecated by setuptools
    makefile = (ROOT / "Makefile").read_text()
    assert "happens once" in makefile
