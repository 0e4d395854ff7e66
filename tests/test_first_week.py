"""What a newcomer's first week tripped on, each driven as a person meets it: history in a direct message,
every word in the reader's language, a mail already cancelled, an unknown account in history, ids in back
quotes, every bad setting at once, a quiet start, `history` before any store, and several open prompts in
the console."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from bot.console.wire import FORM, blocks_text, buttons, signed_headers, slash_command
from bot.mailpartner.client import MailPartnerClient
from bot.requests.commands import CancelRequest, parse_direct_message, parse_mention, parse_slash_command
from bot.requests.kinds import Refusal, Via
from bot.settings import Settings, SettingsError
from bot.store.history import HistoryEvent
from bot.words.blocks import history_line
from bot.words.home import HomeFacts, home_view
from tests.conftest import ALICE, ONCALL, Harness
from tests.fakes import SIGNING_SECRET, BotProcess, FakeMailPartner, bot_env, free_port, run_bot
from tests.test_home import DM, dm
from tests.waiting import eventually

# English words that must not show in French: the sandbox's mark, the ways in, the refusals as stored.
ENGLISH = re.compile(
    r"SANDBOX|\((?:command|shortcut|workflow run|dm|cli)\)|direct message|command line|not_allowed|own_request|"
    r"private_conversation|Looking up|Cancel scheduled|Requested by|recipients|nothing delivered|Keep it"
)


# -- 1. history in a direct message ------------------------------------------------------------------------


def test_history_in_a_direct_message_is_the_persons_own_and_names_each_conversation(harness: Harness) -> None:
    _, prompt = harness.command("302")
    harness.click(prompt)
    harness.settle()
    (mine,) = dm(harness, "history")
    text = blocks_text(mine)
    assert "Your cancel history" in text and "in this conversation" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("•")]
    assert lines and all(f"<#{ONCALL}>" in line for line in lines), text
    (none,) = dm(harness, "history", user="U0NOBODY00", channel="D0NOBODY00")
    assert "You have not asked to cancel" in blocks_text(none)


# -- 2. every word in the reader's language ----------------------------------------------------------------


def test_french_history_lines_and_home_tab_have_no_english_words() -> None:
    events = [
        HistoryEvent(1_800_000_000.0, "request", ALICE, ONCALL, "", ("300",), via=via.value, detail={"sandbox": True})
        for via in Via
    ] + [
        HistoryEvent(1_800_000_000.0, "refusal", ALICE, DM, "", ("300",), detail={"refusal": r.value, "sandbox": True})
        for r in Refusal
    ]
    for event in events:
        line = history_line(event, "fr", with_channel=True)
        assert not ENGLISH.search(line), line
        assert ENGLISH.search(history_line(event, "en", with_channel=True)), "the check itself finds English"
    view = home_view(HomeFacts(ALICE, may_cancel=True, history=events, sandbox=True), "fr")
    shown = blocks_text({"blocks": view["blocks"]})
    assert "BAC À SABLE" in shown and not ENGLISH.search(shown), shown


def test_the_console_plays_a_french_speaker(tmp_path: Path) -> None:
    result = run_bot(["console", "--lang", "fr"], tmp_path, stdin="/cancel-mail 300\nkeep\ndm history\nquit\n")
    assert result.returncode == 0, result.stderr
    # What this person reads alone is in French; the console's own frame stays as it is.
    theirs = [
        line
        for line in result.stdout.split("\n[")
        if line.startswith(("only you see]", "prompt now reads]", "the bot writes to you]"))
    ]
    assert len(theirs) >= 4, result.stdout
    for block in theirs:
        assert not ENGLISH.search(block), block
    assert "Je regarde `300`" in result.stdout and "Votre historique" in result.stdout


# -- 3. a mail already cancelled gets no button ------------------------------------------------------------


def test_a_mail_mailpartner_reports_cancelled_gets_no_button(harness: Harness) -> None:
    _, note = harness.command("305")  # the sandbox's own cancelled mail: its report says so
    assert not buttons(note) and "`305` is already cancelled and will not be sent" in blocks_text(note)
    _, prompt = harness.command("300 305")
    text = blocks_text(prompt)
    assert "`305` is already cancelled" in text and "Cancel scheduled mail `300`" in text  # one mail left
    harness.settle()
    assert harness.mailpartner.requests == []  # nothing sent to message-cancel


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("statuses", "cancelled"),
    [(["Cancelled", "canceled"], True), (["Cancelled", "Scheduled"], False), (["Delivered"], False), ([], False)],
)
async def test_a_delivery_report_is_cancelled_only_when_every_row_says_so(statuses: list[str], cancelled: bool) -> None:
    rows = [{"email": f"a{i}@example.fr", "status": s} for i, s in enumerate(statuses)]
    body = {"success": True, "code": 200, "messageId": "300", "StatutResponseList": rows}
    client = MailPartnerClient(
        "key-0123456789", transport=httpx.MockTransport(lambda _: httpx.Response(200, json=body))
    )
    assert (await client.delivery_report("300")).already_cancelled is cancelled


# -- 4. an unknown account in history ----------------------------------------------------------------------


def test_history_of_an_unknown_account_says_it_is_not_one_of_the_bots(harness: Harness) -> None:
    url = harness.slack.new_response_url()
    harness.dispatch(slash_command("history nope:300", user=ALICE, channel=ONCALL, response_url=url), FORM)
    harness.settle()
    (told,) = [c.payload for c in harness.slack.calls if c.path == url.removeprefix(harness.slack.url)]
    assert "`nope` is not one of the bot's MailPartner accounts" in told["text"], told
    (written,) = dm(harness, "history nope:300")
    assert "`nope` is not one of the bot's MailPartner accounts" in written["text"]


# -- 5. ids in back quotes ---------------------------------------------------------------------------------


def test_ids_copied_in_back_quotes_are_ids_everywhere(harness: Harness) -> None:
    for parse in (parse_slash_command, parse_direct_message):
        assert parse("cancel `300` ```brand-b:301``` -- why") == CancelRequest(("300", "brand-b:301"), "why")
    assert parse_mention("<@U0BOT00000> cancel `300`") == CancelRequest(("300",))
    _, prompt = harness.command("`300`")
    assert buttons(prompt) and "Cancel scheduled mail `300`" in blocks_text(prompt)


# -- 7. every bad setting at once --------------------------------------------------------------------------


def test_every_bad_setting_is_listed_at_once_database_url_included(tmp_path: Path) -> None:
    env = {
        "MAILPARTNER_SANDBOX": "true",
        "MAILPARTNER_TIMEOUT": "ten",
        "PORT": "x",
        "DATABASE_URL": f"sqlite:///{tmp_path}/nope/x.db",
        "CANCEL_MAIL_REQUIRE_REASON": "maybe",
    }
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env, console=True)
    problems = raised.value.problems
    assert [p.split(" ")[0] for p in problems] == [
        "PORT",
        "MAILPARTNER_TIMEOUT",
        "CANCEL_MAIL_REQUIRE_REASON",
        "DATABASE_URL",
    ]
    boolean = next(p for p in problems if p.startswith("CANCEL_MAIL_REQUIRE_REASON"))
    for spelling in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        assert re.search(rf"\b{spelling}\b", boolean), boolean
    result = run_bot(["check"], tmp_path, **env)
    listed = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert result.returncode == 2 and len(listed) == 4 and result.stdout == "", result.stderr
    assert not (tmp_path / "nope").exists()


# -- 8. a quiet start --------------------------------------------------------------------------------------


@pytest.fixture
def out_of_reach(tmp_path: Path):
    """The bot in HTTP mode at the default log level, whose Slack Web API does not answer (a closed port),
    while Slack still delivers commands and takes response_urls."""
    from bot.console.local_slack import LocalSlack

    slack, mailpartner = LocalSlack().start(), FakeMailPartner().start()
    env = bot_env(free_port(), f"http://127.0.0.1:{free_port()}/api/", mailpartner.base_url, LOG_LEVEL="INFO")
    env["CANCEL_MAIL_STATE_DIR"] = str(tmp_path / "state")
    bot = BotProcess(env, tmp_path / "bot.log")
    try:
        bot.wait_healthy(30)
        yield bot, slack
    finally:
        bot.stop()
        mailpartner.stop()
        slack.stop()


def test_a_command_gets_its_prompt_and_a_short_log_while_slacks_web_api_is_out_of_reach(out_of_reach) -> None:
    bot, slack = out_of_reach
    start_lines = bot.log().splitlines()
    assert not [line for line in start_lines if "alembic" in line and "Running upgrade" not in line], start_lines
    assert len(start_lines) <= 16, "\n".join(start_lines)  # the start-up log fits on a screen
    url = slack.new_response_url()
    body = slash_command("300", user=ALICE, channel=ONCALL, response_url=url)
    headers = signed_headers(SIGNING_SECRET, body, content_type=FORM)
    ack = httpx.post(bot.url + "/slack/events", content=body, headers=headers, timeout=10)
    assert ack.status_code == 200 and "Looking up" in ack.text, ack.text
    prompt = eventually(
        lambda: next((c.payload for c in slack.calls if c.path == url.removeprefix(slack.url)), None),
        timeout=20,
        what="the prompt through the response_url",
    )
    assert buttons(prompt) and "Something went wrong" not in blocks_text(prompt)
    time.sleep(0.5)  # any line the command still had to write
    after = bot.log().splitlines()[len(start_lines) :]
    assert "Traceback" not in bot.log() and not [line for line in after if " ERROR " in line], after
    assert len(after) <= 4, "\n".join(after)  # one line for the known condition, and the audit line


# -- 10. history before any store --------------------------------------------------------------------------


def test_history_before_anything_ran_creates_no_store(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = run_bot(["history"], tmp_path, CANCEL_MAIL_STATE_DIR=str(state))
    assert result.returncode == 0 and "No history yet" in result.stderr, result.stderr
    assert not state.exists() and not list(tmp_path.glob("*.db"))


# -- 11. the console with prompts open ---------------------------------------------------------------------


def test_the_console_keeps_several_prompts_open_and_answers_the_newest_or_the_named(tmp_path: Path) -> None:
    typed = "/cancel-mail 300\n/cancel-mail 301\nhistory\nconfirm 300\nkeep\nconfirm\nquit\n"
    result = run_bot(["console"], tmp_path, stdin=typed)
    out = result.stdout
    assert result.returncode == 0 and "Type `confirm` or `keep`." not in out, out
    assert out.count("[ Cancel the mail ]") == 2  # the second command ran, and showed its own prompt
    assert "Cancel history in this conversation" in out  # so did a history, with both prompts open
    confirmed, kept = out.index("@you confirmed cancelling `default:300`"), out.index("@you kept `default:301`")
    assert confirmed < kept and "✅ Mail `default:300` is cancelled" in out
    assert "No prompt is open." in out
    assert "Mail `default:301` is cancelled" not in out
