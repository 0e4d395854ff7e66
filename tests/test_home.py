"""The bot's home in Slack: the App Home (Home tab), direct messages, and each person's own language."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from slack_sdk.models.views import View

from bot.console.local_slack import LocalSlack
from bot.console.wire import (
    FORM,
    JSON,
    app_home_opened,
    blocks_text,
    button_click,
    buttons,
    direct_message,
    view_button_click,
)
from bot.inbound.people import Languages, language_of
from bot.words.home import MAX_BLOCKS, OPEN_FORM_ACTION, SECTION_TEXT
from tests.conftest import ALICE, BOB, MALLORY, Harness
from tests.fakes import BotProcess, FakeMailPartner, bot_env, free_port

DM = "D0ALICE000"
# What Slack's reference says each new Web API call takes (api.slack.com/methods/…).
ARGUMENTS = {"users.info": {"user", "include_locale"}, "views.publish": {"user_id", "view", "hash"}}


def open_home(harness: Harness, user: str = ALICE) -> dict[str, Any]:
    """Open the Home tab as `user`; the view the bot published for them once every part answered."""
    response = harness.dispatch(app_home_opened(user=user, channel=f"D{user[1:]}"), JSON)
    assert response.status == 200
    harness.settle()
    published = [c for c in harness.slack.of("views.publish") if c.payload.get("user_id") == user]
    assert published and "failed" not in published[-1].response, published
    view = published[-1].payload["view"]
    return json.loads(view) if isinstance(view, str) else view


def valid_home(view: dict[str, Any]) -> str:
    """Check the view as Slack would (slack_sdk's models, Slack's limits); its text as a person reads it."""
    View(**view).validate_json()
    assert view["type"] == "home" and len(view["blocks"]) <= MAX_BLOCKS
    for block in view["blocks"]:
        for text in [block.get("text", {}).get("text", "")] + [e.get("text", "") for e in block.get("elements", [])]:
            assert len(str(text)) <= SECTION_TEXT
    return blocks_text(view)


def calls_take_documented_arguments(slack: LocalSlack) -> None:
    for method, allowed in ARGUMENTS.items():
        for call in slack.of(method):
            assert set(call.payload) - {"team_id"} <= allowed, (method, call.payload)
            assert "failed" not in call.response and call.response.get("ok"), (method, call.response)


# -- the App Home ---------------------------------------------------------------------------------------


def test_the_home_of_someone_who_may_cancel(harness: Harness) -> None:
    _, prompt = harness.command("300 -- wrong list")
    harness.click(prompt)
    harness.settle()
    text = valid_home(open_home(harness))
    assert "You may cancel scheduled mails" in text and "[ Cancel a scheduled mail ]" in text
    assert "`300` is cancelled" in text and "asked to cancel `300`" in text and "wrong list" in text
    # The accounts' states come from `me`, asked in the background; the home is published again with them.
    assert "`default`: key accepted" in text and "mail credits" in text
    assert "SANDBOX" not in text and "mp-test-key" not in text
    calls_take_documented_arguments(harness.slack)


def test_the_home_of_someone_who_may_not_names_the_rule_and_whom_to_ask(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_ALLOWED_USERS=f"{ALICE},{BOB}", CANCEL_MAIL_ALLOWED_USERGROUPS="S0ONCALL00")
    view = open_home(harness, MALLORY)
    text = valid_home(view)
    assert "You may not cancel mails" in text and f"<@{ALICE}>" in text and "<!subteam^S0ONCALL00>" in text
    assert not buttons(view) and "MailPartner accounts" not in text  # no button, no account states


def test_the_home_while_slack_has_not_said_who_is_in_the_groups_says_so(make_harness, slack: LocalSlack) -> None:
    slack.usergroups["S0ONCALL00"] = [BOB]
    slack.slow("usergroups.users.list", 6.0)
    harness = make_harness(CANCEL_MAIL_ALLOWED_USERGROUPS="S0ONCALL00")
    view = open_home(harness, BOB)
    text = valid_home(view)
    assert "Slack has not yet said who is in the user groups" in text and "You may not" not in text
    assert not buttons(view)


def test_the_home_of_someone_with_no_history_yet(harness: Harness) -> None:
    text = valid_home(open_home(harness, BOB))
    assert "You have not asked to cancel or confirmed a cancel yet." in text


def test_a_long_history_stays_within_slacks_limits_and_says_how_to_see_more(harness: Harness) -> None:
    for i in range(12):
        _, prompt = harness.command(f"m{i:04d} -- {'x' * 400}")
        harness.click(prompt)
    harness.settle()
    text = valid_home(open_home(harness))
    assert "Showing your 15 newest" in text


def test_a_store_that_does_not_answer_gives_a_home_that_says_so(harness: Harness, mocker) -> None:
    mocker.patch.object(harness.bot.store, "history", return_value=None)
    text = valid_home(open_home(harness))
    assert "Your history is unavailable right now" in text


def test_a_refused_key_is_said_at_the_top(harness: Harness, mailpartner: FakeMailPartner) -> None:
    from tests.fakes import Fault

    mailpartner.fault("", Fault(body=json.dumps({"success": False, "code": 10}), times=5, endpoint="me"))
    view = open_home(harness)
    text = valid_home(view)
    assert "A MailPartner account is not working" in text and "refuses the key (code 10)" in text
    first_sections = [b for b in view["blocks"] if b["type"] == "section"][:1]
    assert "not working" in first_sections[0]["text"]["text"]


def test_a_mailpartner_that_does_not_answer_gives_a_home_that_says_so(
    harness: Harness, mailpartner: FakeMailPartner
) -> None:
    from tests.fakes import Fault

    mailpartner.fault("", Fault(reset=True, times=5, endpoint="me"))
    text = valid_home(open_home(harness))
    assert "`default`: MailPartner did not answer just now" in text
    assert "You may cancel scheduled mails" in text  # the rest of the view is there all the same


def test_a_slow_checking_view_never_lands_after_the_answered_one(harness: Harness, mocker) -> None:
    from bot.inbound import home
    from bot.words.home import home_view

    def slow_while_checking(*args: Any, **kwargs: Any) -> dict[str, Any]:
        view = home_view(*args, **kwargs)
        if "checking…" in json.dumps(view, ensure_ascii=False):
            time.sleep(0.5)  # rendered slowly: the accounts answer, and their view is ready, meanwhile
        return view

    mocker.patch.object(home, "home_view", side_effect=slow_while_checking)
    text = valid_home(open_home(harness))
    assert "checking…" not in text and "`default`" in text, text


def test_the_home_button_opens_the_cancel_form(harness: Harness) -> None:
    view = open_home(harness)
    click = view_button_click(buttons(view)[OPEN_FORM_ACTION], user=ALICE, view=view)
    assert harness.dispatch(click, FORM).status == 200
    harness.settle()
    (opened,) = harness.slack.of("views.open")
    form = opened.payload["view"]
    form = json.loads(form) if isinstance(form, str) else form
    assert form["callback_id"] == "cancel_mail_form_submit"  # the shortcut's own form


def test_the_home_is_published_again_when_a_cancel_of_theirs_finishes(harness: Harness) -> None:
    open_home(harness)
    before = len(harness.slack.of("views.publish"))
    _, prompt = harness.command("302")
    harness.click(prompt)
    harness.settle()
    after = [c for c in harness.slack.of("views.publish") if c.payload.get("user_id") == ALICE]
    assert len(after) > before
    view = after[-1].payload["view"]
    assert "`302` is cancelled" in blocks_text(json.loads(view) if isinstance(view, str) else view)
    # Someone who never opened the Home tab costs no views.publish per cancel.
    _, prompt = harness.command("301", user=BOB)
    harness.click(prompt, user=BOB)
    harness.settle()
    assert not [c for c in harness.slack.of("views.publish") if c.payload.get("user_id") == BOB]


# -- direct messages --------------------------------------------------------------------------------------


def dm(harness: Harness, text: str, user: str = ALICE, channel: str = DM) -> list[dict[str, Any]]:
    """Write to the bot; what it wrote back in that conversation."""
    before = len(harness.slack.calls)
    harness._ts += 1
    ts = f"1800000000.{harness._ts:06d}"
    assert harness.dispatch(direct_message(text, user=user, channel=channel, ts=ts), JSON).status == 200
    harness.settle()
    return [
        c.payload
        for c in harness.slack.calls[before:]
        if c.method == "chat.postMessage" and c.payload.get("channel") == channel
    ]


def test_a_direct_message_cancels_a_mail_and_the_outcome_comes_back_there(harness: Harness, audit_lines) -> None:
    (prompt,) = dm(harness, "cancel 300 -- wrong list")
    assert "Cancel scheduled mail `300`" in blocks_text(prompt) and "wrong list" in blocks_text(prompt)
    url = harness.slack.new_response_url()
    body = button_click(buttons(prompt)["cancel_mail_confirm"], user=ALICE, channel=DM, response_url=url)
    assert harness.dispatch(body, FORM).status == 200
    harness.settle()
    outcome = [c.payload for c in harness.slack.calls if c.path == url.removeprefix(harness.slack.url)]
    assert any("`300` is cancelled" in blocks_text(p) for p in outcome)
    assert harness.mailpartner.cancels["300"] == 1
    requests = [line for line in audit_lines() if line["action"] == "request"]
    assert requests[-1]["via"] == "dm" and requests[-1]["channel"] == DM


def test_direct_messages_take_history_and_help_and_anything_else_gets_the_usage(harness: Harness) -> None:
    _, prompt = harness.command("302")
    harness.click(prompt)
    harness.settle()
    (history,) = dm(harness, "history 302")
    assert "History of mail `302`" in blocks_text(history)
    (usage,) = dm(harness, "help")
    assert "cancel <id>" in usage["text"] and not buttons(usage)
    for text in ("what can you do", "300"):  # what is wrong in a line, and where the rest is
        (short,) = dm(harness, text)
        assert "Write `help` for the rest." in short["text"] and "cancel <id>" not in short["text"], text
        assert not buttons(short)
    assert harness.mailpartner.cancels["300"] == 0


def test_the_bots_own_messages_and_edits_are_not_requests(harness: Harness) -> None:
    for extra in ({"bot_id": "B0BOT00000"}, {"subtype": "message_changed"}):
        event = json.loads(direct_message("cancel 300", user=ALICE, channel=DM, ts="1800000000.900000"))
        event["event"].update(extra)
        event["event_id"] = f"Ev{extra}"
        assert harness.dispatch(json.dumps(event), JSON).status == 200
    harness.settle()
    assert not harness.slack.of("chat.postMessage") and harness.mailpartner.reports == []


def test_access_rules_apply_to_direct_messages(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_ALLOWED_USERS=BOB)
    (refused,) = dm(harness, "cancel 300")
    assert "not allowed" in refused["text"] and not buttons(refused)
    assert harness.mailpartner.reports == []


# -- each person's language ---------------------------------------------------------------------------------


def test_a_french_speakers_private_prompt_is_in_french_and_the_channel_outcome_stays_english(
    harness: Harness, slack: LocalSlack
) -> None:
    slack.locales[ALICE] = "fr-FR"
    _, prompt = harness.command("300")
    assert "Annuler l'envoi programmé du mail `300`" in blocks_text(prompt), blocks_text(prompt)
    assert "1\u202f240 destinataires" in blocks_text(prompt)
    harness.click(prompt)
    harness.settle()
    after = [c.payload for c in slack.calls if c.is_response_url]
    outcome = next(p for p in after if p.get("response_type") == "in_channel")
    assert "Mail `300` is cancelled" in blocks_text(outcome)  # the channel reads the bot's language
    update = next(p for p in after if p.get("replace_original") and not buttons(p) and "300" in blocks_text(p))
    assert "a confirmé" in blocks_text(update)  # the private prompt keeps its own
    calls_take_documented_arguments(slack)


def test_a_language_the_bot_has_no_words_for_falls_back(harness: Harness, slack: LocalSlack) -> None:
    slack.locales[ALICE] = "de-DE"
    _, prompt = harness.command("300")
    assert "Cancel scheduled mail" in blocks_text(prompt)
    assert language_of("fr_CA", "en") == "fr" and language_of("", "fr") == "fr" and language_of("ja-JP", "en") == "en"


def test_users_info_failing_or_slow_falls_back_to_the_bots_language(slack: LocalSlack) -> None:
    from bot.app import async_web_client
    from bot.loop import LoopThread
    from bot.settings import Settings

    loop = LoopThread()
    client = async_web_client(Settings(slack_bot_token="xoxb-1", slack_api_url=slack.api_url))
    slack.locales[ALICE] = "fr-FR"
    slack.fail("users.info", times=1, error="user_not_found")
    failing = Languages(client, "en", loop=loop)
    assert loop.run(failing.lookup(ALICE)) == "en"
    slack.slow("users.info", 1.5)
    slack.locales[BOB] = "fr-FR"
    slow = Languages(client, "en", loop=loop)
    assert loop.run(slow.lookup(BOB, timeout=0.1)) == "en"  # Slack's "fr" comes after the wait: not waited for
    assert loop.run(slow.lookup(ALICE, timeout=10)) == "fr"  # and once Slack answers, known
    assert slow.of(ALICE) == "fr"
    loop.close()


# -- end to end: a process with the two-person rule on ------------------------------------------------------


def test_a_direct_message_on_a_process_with_the_two_person_rule(tmp_path: Path) -> None:
    from tests.test_e2e import Driver

    with LocalSlack() as slack:
        mailpartner = FakeMailPartner().start()
        env = bot_env(free_port(), slack.api_url, mailpartner.base_url, CANCEL_MAIL_REQUIRE_SECOND_PERSON="true")
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            bot.wait_healthy()
            driver = Driver(bot, slack)
            slack.locales[ALICE] = "fr-FR"
            body = direct_message("cancel 300 -- wrong list", user=ALICE, channel=DM, ts="1800000000.000001")
            assert driver.post(body, JSON).status_code == 200
            (note,) = slack.wait_for(lambda c: c.method == "chat.postMessage" and c.payload.get("channel") == DM)
            # Nobody else sees this conversation, so nobody could confirm: the note says where to ask, in French.
            assert "deuxième personne" in note.payload["text"] and "/cancel-mail 300" in note.payload["text"]
            assert not buttons(note.payload) and mailpartner.reports == []
            opened = app_home_opened(user=ALICE, channel=DM)
            assert driver.post(opened, JSON).status_code == 200
            home = slack.wait_for(lambda c: c.method == "views.publish", timeout=15)[-1]
            view = home.payload["view"]
            assert "Vous pouvez annuler" in blocks_text(json.loads(view) if isinstance(view, str) else view)
            assert "Traceback" not in bot.log()
        finally:
            bot.stop()
            mailpartner.stop()
