"""Layer 2: signed requests dispatched to the real Bolt App; Web API and response_urls on a LocalSlack."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.console.wire import FORM, blocks_text, buttons, slash_command
from tests.conftest import ALICE, BOB, MALLORY, ONCALL, Harness
from tests.fakes import API_KEY, Fault
from tests.waiting import eventually


def after_prompt(harness: Harness, method: str = "response_url") -> list:
    """What the bot sent by `method` once the prompt was up: the prompt's own post (its buttons) left out."""
    return [c for c in harness.slack.delivered(method) if not buttons(c.payload)]


def outcome_posts(harness: Harness) -> list[dict]:
    posts = [
        c.payload for c in harness.slack.delivered("response_url") if c.payload.get("response_type") == "in_channel"
    ]
    posts += [c.payload for c in harness.slack.delivered("chat.postMessage") if not buttons(c.payload)]
    return posts


# -- /cancel-mail ---------------------------------------------------------------------------------------


def test_command_acks_at_once_then_shows_the_mail_and_cancels_nothing(harness: Harness) -> None:
    url = harness.slack.new_response_url()
    response = harness.dispatch(slash_command("300", user=ALICE, channel=ONCALL, response_url=url), FORM)
    assert response.status == 200
    ack = json.loads(response.body)
    assert ack["response_type"] == "ephemeral" and "Looking up `300`" in ack["text"] and not buttons(ack)
    harness.settle()
    (message,) = [c.payload for c in harness.slack.of("response_url")]
    assert message["response_type"] == "ephemeral" and message["replace_original"] is True
    confirm, keep = buttons(message)["cancel_mail_confirm"], buttons(message)["cancel_mail_keep"]
    assert confirm["style"] == "danger" and "style" not in keep
    assert "`300`: 1,240 recipients; nothing delivered yet." in blocks_text(message)
    assert harness.mailpartner.requests == []  # nothing cancelled: only the delivery report was asked
    assert [r["messageId"] for r in harness.mailpartner.reports] == ["300"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "help",
        "abc!",
        "x" * 65,
        "300 ../etc",
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26",
    ],
)
def test_bad_input_gets_usage_and_no_buttons(harness: Harness, text: str) -> None:
    response, message = harness.command(text)
    assert response.status == 200
    assert "/cancel-mail" in message["text"]  # the usage, or where it is
    assert not buttons(message)
    harness.settle()
    assert harness.mailpartner.requests == []


def test_confirm_replaces_prompt_then_posts_outcome_in_channel(harness: Harness, audit_lines) -> None:
    _, prompt = harness.command("300")
    assert harness.click(prompt).status == 200
    harness.settle()
    posts = after_prompt(harness)
    first = posts[0].payload
    assert first["replace_original"] is True and "confirmed cancelling" in blocks_text(first) and not buttons(first)
    outcome = [p.payload for p in posts if p.payload.get("response_type") == "in_channel"]
    assert len(outcome) == 1
    text = blocks_text(outcome[0])
    assert "`300` is cancelled" in text and "code 200" in text and f"<@{ALICE}>" in text
    assert harness.mailpartner.cancels["300"] == 1
    assert [line["action"] for line in audit_lines()] == ["request", "confirm", "outcome"]


def test_keep_replaces_prompt_and_cancels_nothing(harness: Harness, audit_lines) -> None:
    _, prompt = harness.command("300")
    harness.click(prompt, "keep")
    harness.settle()
    (post,) = after_prompt(harness)
    assert post.payload["replace_original"] is True
    assert "kept `300`" in blocks_text(post.payload)
    assert harness.mailpartner.requests == []
    assert audit_lines()[-1]["action"] == "keep"


def test_second_confirm_while_in_flight_is_refused_and_names_who(harness: Harness, mailpartner) -> None:
    mailpartner.fault("300", Fault(delay=1.0))
    _, prompt = harness.command("300")
    harness.click(prompt, user=ALICE)
    harness.click(prompt, user=BOB)
    harness.settle()
    notes = [
        c.payload for c in harness.slack.delivered("response_url") if c.payload.get("response_type") == "ephemeral"
    ]
    assert any("already under way" in blocks_text(n) and f"<@{ALICE}>" in blocks_text(n) for n in notes)
    assert len([r for r in mailpartner.requests if r["messageId"] == "300"]) == 1


def test_bulk_command_one_prompt_one_summary(harness: Harness) -> None:
    _, prompt = harness.command("300 301 300 303 304 999")
    text = blocks_text(prompt)
    assert "mails `300`, `301`, `303`, `999` at" in text  # duplicate removed; 304 has gone out, so not asked
    assert "`304` has gone out: delivered to all 3 recipients" in text
    assert "recipients in all" not in text  # 999 has no report: a total of the others would read as all
    assert "`999`: MailPartner has no delivery report for it yet" in text
    harness.click(prompt)
    harness.settle()
    (summary,) = outcome_posts(harness)
    text = blocks_text(summary)
    assert "2 cancelled · 1 too late · 0 already sent · 1 not found · 0 failed" in text
    for mail in ("300", "301", "303", "999"):
        assert f"`{mail}`" in text
    assert [r["messageId"] for r in harness.mailpartner.requests].count("304") == 0


def test_outcome_falls_back_to_chat_post_message_when_response_url_fails(harness: Harness, slack) -> None:
    _, prompt = harness.command("300")
    harness.click(prompt)
    slack.fail("response_url", times=100, status=404, error="expired_url")
    harness.settle()
    posted = slack.delivered("chat.postMessage")
    assert len(posted) == 1 and "`300` is cancelled" in blocks_text(posted[0].payload)


def test_outcome_survives_slack_rate_limit(harness: Harness, slack) -> None:
    _, prompt = harness.command("300")
    slack.fail("response_url", times=2, status=429, headers={"Retry-After": "0"})
    harness.click(prompt)
    harness.settle()
    assert len(outcome_posts(harness)) == 1
    # The response_url was retried after the 429s, not abandoned for chat.postMessage.
    assert slack.of("chat.postMessage") == []
    assert [c.response.get("failed") for c in slack.of("response_url") if not buttons(c.payload)][:2] == [429, 429]


def test_outcome_kept_in_audit_when_slack_refuses_everything(harness: Harness, slack, audit_lines) -> None:
    _, prompt = harness.command("300")
    slack.fail("response_url", times=100, status=404, error="expired_url")
    slack.fail("chat.postMessage", times=100, error="channel_not_found")
    harness.click(prompt)
    harness.settle()
    lines = audit_lines()
    outcome = next(line for line in lines if line["action"] == "outcome")
    assert outcome["result"] == "code 200" and outcome["cancelled"] is True
    failed = lines[-1]
    assert failed["action"] == "post_failed" and failed["results"] == ["code 200"] and failed["mail_ids"] == ["300"]


def test_forged_signature_is_rejected_before_any_listener(harness: Harness) -> None:
    body = slash_command("300", user=ALICE, channel=ONCALL, response_url=harness.slack.new_response_url())
    response = harness.dispatch(body, FORM, **{"X-Slack-Signature": "v0=" + "0" * 64})
    assert response.status == 401


# -- access --------------------------------------------------------------------------------------------


def test_outsider_command_is_refused(make_harness, audit_lines) -> None:
    harness = make_harness(CANCEL_MAIL_ALLOWED_USERS=ALICE)
    _, message = harness.command("300", user=MALLORY)
    assert "not allowed" in message["text"] and not buttons(message)
    refusal = audit_lines()[-1]
    assert refusal["action"] == "refusal" and refusal["actor"] == MALLORY and refusal["refusal"] == "not_allowed_user"


def test_command_in_other_channel_is_refused(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_ALLOWED_CHANNELS=ONCALL)
    _, message = harness.command("300", channel="C0RANDOM00")
    assert "cannot be cancelled from this channel" in message["text"]


def test_usergroup_members_are_allowed(make_harness, slack) -> None:
    slack.usergroups["S0ONCALL00"] = [BOB]
    harness = make_harness(CANCEL_MAIL_ALLOWED_USERGROUPS="S0ONCALL00")
    _, message = harness.command("300", user=BOB)
    assert buttons(message)
    _, message = harness.command("300", user=MALLORY)
    assert not buttons(message)
    assert len(slack.of("usergroups.users.list")) == 1  # cached


def test_a_slow_first_look_at_the_user_groups_never_holds_the_event_loop(make_harness, slack, monkeypatch) -> None:
    from bot.inbound import access

    monkeypatch.setattr(access, "FIRST_READ_WAIT", 30.0)  # here, the request waits for Slack's answer whatever it takes
    slack.usergroups["S0ONCALL00"] = [BOB]
    slack.slow("usergroups.users.list", 2.0)
    harness = make_harness(CANCEL_MAIL_ALLOWED_USERGROUPS="S0ONCALL00")
    with ThreadPoolExecutor(1) as pool:
        asked = pool.submit(harness.command, "300", user=BOB)  # waits 2 s for Slack's answer on the groups
        turns = 0
        while not asked.done():  # meanwhile the loop goes on: each turn comes back at once
            harness.bot.loop.run(asyncio.sleep(0.05), timeout=0.5)
            turns += 1
        _, message = asked.result()
    assert buttons(message) and turns >= 10


def test_user_groups_slack_has_not_read_yet_are_a_cannot_tell_within_the_ack(make_harness, slack) -> None:
    slack.usergroups["S0ONCALL00"] = [BOB]
    slack.slow("usergroups.users.list", 6.0)
    harness = make_harness(CANCEL_MAIL_ALLOWED_USERGROUPS="S0ONCALL00")
    started = time.monotonic()
    response, message = harness.command("300", user=BOB)
    assert time.monotonic() - started < 4.0  # after FIRST_READ_WAIT (2 s), long before Slack's answer (6 s)
    assert response.status == 200 and not buttons(message)
    assert "Slack has not yet said who is in the user groups" in message["text"]  # not "you are not allowed"
    eventually(lambda: buttons(harness.command("300", user=BOB)[1]), timeout=15, what="the read landing")
    assert not buttons(harness.command("300", user=MALLORY)[1])  # read: a plain no for who is not in them


# -- threads -------------------------------------------------------------------------------------------


def test_mention_posts_prompt_in_thread_and_outcome_in_same_thread(harness: Harness) -> None:
    _, ts = harness.mention("<@U0BOT00000> cancel 300")
    harness.settle()
    prompt, prompt_ts = harness.thread_prompt()
    assert prompt["thread_ts"] == ts
    harness.click(prompt, message_ts=prompt_ts, thread_ts=ts)
    harness.settle()
    outcome = [c.payload for c in harness.slack.delivered("chat.postMessage") if not buttons(c.payload)]
    assert len(outcome) == 1 and outcome[0]["thread_ts"] == ts and "code 200" in blocks_text(outcome[0])
    updates = harness.slack.delivered("chat.update")
    assert [u.payload["ts"] for u in updates] == [prompt_ts]  # one update: no later one replaces it
    assert f"<@{ALICE}> confirmed" in blocks_text(updates[-1].payload) and not buttons(updates[-1].payload)


def test_mention_inside_existing_thread_stays_there(harness: Harness) -> None:
    harness.mention("<@U0BOT00000> cancel 300", thread_ts="1799999999.000100")
    harness.settle()
    prompt, _ = harness.thread_prompt()
    assert prompt["thread_ts"] == "1799999999.000100"


def test_mention_help_gets_usage_in_thread(harness: Harness) -> None:
    _, ts = harness.mention("<@U0BOT00000> what can you do")
    harness.settle()
    (post,) = harness.slack.of("chat.postMessage")
    assert post.payload["thread_ts"] == ts and "`what`" in post.payload["text"]
    assert "/cancel-mail help" in post.payload["text"]


def test_retried_event_produces_nothing_new(harness: Harness) -> None:
    harness.mention("<@U0BOT00000> cancel 300", event_id="Ev0RETRY1")
    harness.mention(
        "<@U0BOT00000> cancel 300",
        event_id="Ev0RETRY1",
        **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    harness.settle()
    assert len(harness.slack.of("chat.postMessage")) == 1


def test_outsider_click_on_thread_prompt_changes_nothing(make_harness, audit_lines) -> None:
    harness = make_harness(CANCEL_MAIL_ALLOWED_USERS=f"{ALICE},{BOB}")
    _, ts = harness.mention("<@U0BOT00000> cancel 300")
    harness.settle()
    prompt, prompt_ts = harness.thread_prompt()
    harness.click(prompt, user=MALLORY, message_ts=prompt_ts, thread_ts=ts)
    harness.settle()
    (note,) = harness.slack.delivered("response_url")
    assert note.payload["response_type"] == "ephemeral" and note.payload["replace_original"] is False
    assert "not allowed" in blocks_text(note.payload)
    assert harness.slack.of("chat.update") == [] and harness.mailpartner.requests == []
    refusal = audit_lines()[-1]
    assert (refusal["action"], refusal["actor"], refusal["stage"]) == ("refusal", MALLORY, "confirm")


def test_two_person_rule(make_harness, audit_lines) -> None:
    harness = make_harness(CANCEL_MAIL_REQUIRE_SECOND_PERSON="true")
    _, prompt = harness.command("300", user=ALICE)
    assert prompt["response_type"] == "in_channel" and "second person" in blocks_text(prompt)
    harness.click(prompt, user=ALICE, message_ts="1800000000.000900")
    harness.settle()
    assert harness.mailpartner.requests == []
    assert "second person must confirm" in blocks_text(harness.slack.delivered("response_url")[-1].payload)
    harness.click(prompt, user=BOB, message_ts="1800000000.000900")
    harness.settle()
    assert harness.mailpartner.cancels["300"] == 1
    outcome = next(line for line in audit_lines() if line["action"] == "outcome")
    assert outcome["actor"] == BOB and outcome["requester"] == ALICE


def test_two_person_rule_lets_requester_withdraw(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_REQUIRE_SECOND_PERSON="true")
    _, prompt = harness.command("300", user=ALICE)
    harness.click(prompt, "keep", user=ALICE, message_ts="1800000000.000900")
    harness.settle()
    assert "kept" in blocks_text(harness.slack.delivered("response_url")[-1].payload)


def test_expired_prompt_is_refused(harness: Harness, audit_lines) -> None:
    _, prompt = harness.command("300")
    harness.clock.now += 15 * 60 + 1
    harness.click(prompt)
    harness.settle()
    assert harness.mailpartner.requests == []
    (post,) = after_prompt(harness)
    assert post.payload["replace_original"] is True and "expired" in blocks_text(post.payload)
    line = audit_lines()[-1]
    assert line["action"] == "expiry" and line["age_s"] == 901


def test_tampered_button_value_is_refused(harness: Harness) -> None:
    _, prompt = harness.command("300")
    prompt["blocks"][-1]["elements"][0]["value"] = "not json"
    harness.click(prompt)
    harness.settle()
    assert harness.mailpartner.requests == []
    assert "no longer works" in blocks_text(harness.slack.delivered("response_url")[-1].payload)


# -- audit ---------------------------------------------------------------------------------------------


def test_audit_lines_field_by_field(make_harness, audit_lines, mailpartner) -> None:
    harness = make_harness(CANCEL_MAIL_AUDIT_CHANNEL="C0AUDIT000")
    _, ts = harness.mention("<@U0BOT00000> cancel 300")
    harness.settle()
    prompt, prompt_ts = harness.thread_prompt()
    harness.click(prompt, user=BOB, message_ts=prompt_ts, thread_ts=ts)
    harness.settle()
    request, confirm, outcome = audit_lines()
    for line in (request, confirm, outcome):
        assert set(line) >= {"time", "action", "actor", "channel", "thread", "mail_ids"}
        assert line["channel"] == ONCALL and line["thread"] == ts and line["mail_ids"] == ["300"]
        assert line["time"].endswith("Z")
    assert (request["action"], request["actor"], request["via"]) == ("request", ALICE, "mention")
    assert (confirm["action"], confirm["actor"], confirm["requester"]) == ("confirm", BOB, ALICE)
    assert outcome["action"] == "outcome" and outcome["code"] == 200 and outcome["result"] == "code 200"
    assert outcome["failure"] is None and outcome["cancelled"] is True and outcome["attempts"] == 1
    assert isinstance(outcome["latency_ms"], int) and outcome["latency_ms"] >= 0
    audit_post = [c for c in harness.slack.of("chat.postMessage") if c.payload["channel"] == "C0AUDIT000"]
    assert len(audit_post) == 1 and "https://local.slack/archives/" in audit_post[0].payload["text"]
    assert API_KEY not in json.dumps(audit_lines())


def test_failure_kind_in_audit(harness: Harness, mailpartner, audit_lines) -> None:
    mailpartner.fault("300", Fault(status=500, body="<html>oops</html>", times=5))
    _, prompt = harness.command("300")
    harness.click(prompt)
    harness.settle()
    outcome = audit_lines()[-1]
    assert outcome["code"] is None and outcome["failure"] == "http_error" and outcome["result"] == "http_error"
    (post,) = outcome_posts(harness)
    assert "HTTP 500" in blocks_text(post)


def test_cancel_does_not_wait_for_a_rate_limited_slack(harness: Harness, slack, mailpartner) -> None:
    _, prompt = harness.command("300")
    slack.fail("response_url", times=1, status=429, headers={"Retry-After": "3"})  # the "confirmed" update
    harness.click(prompt)
    eventually(lambda: mailpartner.requests, what="the cancel reaching MailPartner")
    # MailPartner was asked while the rate-limited update still waited out Slack's 3 s: it had not gone.
    updated = [
        c for c in slack.calls if c.is_response_url and "failed" not in c.response and "confirmed" in str(c.payload)
    ]
    assert mailpartner.requests and not updated
    harness.settle()
    # The outcome went first, past the rate-limited cosmetic update; the prompt is updated once.
    posts = [c.payload for c in after_prompt(harness)]
    assert posts[0]["response_type"] == "in_channel" and "`300` is cancelled" in blocks_text(posts[0])
    assert "confirmed cancelling" in blocks_text(posts[1]) and len(posts) == 2


def test_a_listener_bug_still_answers_and_logs(harness: Harness, mocker, caplog) -> None:
    mocker.patch("bot.inbound.listeners.commands.parse_slash_command", side_effect=RuntimeError("bug"))
    response, message = harness.command("300")
    assert response.status == 200 and "Something went wrong" in message["text"] and "Traceback" not in message["text"]
    assert "listener failed on a /cancel-mail: bug" in caplog.text
    assert harness.mailpartner.requests == []


def test_the_prompt_is_updated_once_to_confirmed_even_when_mailpartner_answers_at_once(make_harness) -> None:
    harness = make_harness(MAILPARTNER_SANDBOX="true")  # answers in-process, before Slack hears anything
    urls = []
    for mail in ("300", "301", "302", "303", *(f"x{n:02d}" for n in range(13))):
        _, prompt = harness.command(mail)
        url = harness.slack.new_response_url()
        body = slash_command_click(prompt, url)
        harness.dispatch(body, FORM)
        urls.append(url.removeprefix(harness.slack.url))
    harness.settle()
    for path in urls:
        updates = [
            c for c in harness.slack.delivered("response_url") if c.path == path and c.payload.get("replace_original")
        ]
        assert len(updates) == 1 and "confirmed cancelling" in blocks_text(updates[0].payload), [
            blocks_text(u.payload) for u in updates
        ]


def slash_command_click(prompt: dict, response_url: str) -> str:
    from bot.console.wire import button_click

    return button_click(buttons(prompt)["cancel_mail_confirm"], user=ALICE, channel=ONCALL, response_url=response_url)


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "view_submission", "user": {"id": "U0ALICE"}, "view": {"callback_id": "nope", "state": {"values": 5}}},
        {"type": "view_submission", "user": {"id": "U0ALICE"}, "view": None},
        {
            "type": "view_submission",
            "user": {"id": "U0ALICE"},
            "view": {"type": "modal", "callback_id": "x", "state": 5},
        },
        {"type": "view_closed", "user": {"id": "U0ALICE"}, "view": None},
    ],
)
def test_a_signed_malformed_view_is_refused_400_before_bolt_matches_it(harness: Harness, payload, caplog) -> None:
    """The check runs as Bolt middleware too: in Socket Mode no HTTP server reads the body before Bolt."""
    from urllib.parse import quote

    caplog.set_level(logging.WARNING, logger="bot.inbound.shape")
    response = harness.dispatch("payload=" + quote(json.dumps(payload)), FORM)
    assert response.status == 400
    assert [r for r in caplog.records if "malformed body" in r.getMessage()]


# -- bounded work ---------------------------------------------------------------------------------------


def test_a_confirm_past_the_bound_is_told_the_bot_is_busy_and_nothing_is_done(make_harness, mailpartner) -> None:
    from bot.store import HistoryEvent
    from bot.words.blocks import history_line

    harness = make_harness(CANCEL_MAIL_MAX_IN_FLIGHT="2")
    mailpartner.fault("300", Fault(delay=2.0))
    mailpartner.fault("301", Fault(delay=2.0))
    first = harness.command("300 301")[1]
    second = harness.command("302")[1]
    harness.click(first, user=BOB)
    eventually(lambda: len(mailpartner.requests) == 2, what="both of the first confirm's mails under way")
    assert harness.click(second, user=BOB).status == 200  # acked: the answer is in a note
    harness.settle()
    notes = [
        blocks_text(c.payload)
        for c in harness.slack.delivered("response_url")
        if c.payload.get("response_type") == "ephemeral"
    ]
    assert any("The bot is cancelling 2 mails right now" in n and "Try again in a minute" in n for n in notes), notes
    assert "302" not in {r["messageId"] for r in mailpartner.requests}  # nothing of 302 was done
    assert harness.bot.metrics.registry.get_sample_value("cancel_mail_busy_total") == 1.0
    (busy,) = [e for e in harness.run(harness.bot.store.history(mail_id="302")) or [] if e.action == "busy"]
    assert "at its most cancels at once" in history_line(busy, "en", with_channel=False)
    _, third = harness.command("302")  # once the first is done, the same confirm goes through
    harness.click(third, user=BOB)
    harness.settle()
    assert "`302` is cancelled" in " ".join(blocks_text(p) for p in outcome_posts(harness))
    unrecorded = HistoryEvent(1.8e9, "confirm", BOB, ONCALL, "", ("300",), detail={"claim": "unrecorded"})
    assert "other replicas could not see this cancel" in history_line(unrecorded, "en", with_channel=False)


# -- no exception ends in silence ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["the MailPartner call", "before MailPartner is asked"])
def test_a_cancel_that_raises_still_tells_the_person_what_is_known(harness: Harness, mocker, where: str) -> None:
    service = harness.bot.service
    if where == "the MailPartner call":
        broken = mocker.patch.object(service.accounts, "cancel", side_effect=RuntimeError("bug"))
    else:
        broken = mocker.patch.object(service.replier, "replace_prompt", side_effect=RuntimeError("bug"))
    _, prompt = harness.command("300")
    harness.click(prompt, user=BOB)
    harness.settle()
    (note,) = [p for p in outcome_posts(harness) if "The bot failed while cancelling `300`" in blocks_text(p)]
    assert "may or may not have cancelled it" in blocks_text(note) and "/cancel-mail history 300" in blocks_text(note)
    assert service.under_way(BOB) == ()  # finished here, and in the store: the mail can be asked again
    mocker.stop(broken)
    _, again = harness.command("300")
    harness.click(again, user=BOB)
    harness.settle()
    assert any("`300` is cancelled" in blocks_text(p) for p in outcome_posts(harness))


def test_the_audit_channels_copy_is_in_the_bots_language(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_AUDIT_CHANNEL="C0AUDIT000", BOT_LANGUAGE="fr")
    _, prompt = harness.command("300")
    harness.click(prompt, user=BOB)
    harness.settle()
    (copy,) = [c for c in harness.slack.of("chat.postMessage") if c.payload["channel"] == "C0AUDIT000"]
    assert f"<@{BOB}> a confirmé une annulation dans <#{ONCALL}>" in copy.payload["text"]
    assert "L'envoi du mail `300` est annulé" in copy.payload["text"]  # the outcome, in French
