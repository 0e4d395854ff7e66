"""Layer 2: the reason, the cancel form behind both shortcuts, and the Workflow Builder step, dispatched as
signed requests to the real Bolt App; Web API calls land on a LocalSlack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.console.wire import (
    FORM,
    JSON,
    blocks_text,
    button_click,
    buttons,
    function_executed,
    global_shortcut,
    message_shortcut,
    view_submission,
)
from bot.inbound.forms import CONVERSATION_BLOCK, GLOBAL_SHORTCUT, IDS_BLOCK, MESSAGE_SHORTCUT, REASON_BLOCK
from tests.conftest import ALICE, BOB, MALLORY, ONCALL, Harness
from tests.fakes import Fault

STEP_TOKEN = "xwfp-step-token-0001"
OTHER = "C0OTHER000"


# -- helpers ---------------------------------------------------------------------------------------------


def open_form(harness: Harness, *, message: dict[str, Any] | None = None, user: str = ALICE) -> dict[str, Any]:
    if message is None:
        body = global_shortcut(GLOBAL_SHORTCUT, user=user)
    else:
        body = message_shortcut(
            MESSAGE_SHORTCUT, message, user=user, channel=ONCALL, response_url=harness.slack.new_response_url()
        )
    assert harness.dispatch(body, FORM).status == 200
    harness.settle()
    opened = harness.slack.of("views.open")
    assert opened, "no form was opened"
    return opened[-1].response["view"]


def submit(
    harness: Harness,
    view: dict[str, Any],
    ids: str,
    reason: str = "",
    *,
    conversation: str = ONCALL,
    user: str = ALICE,
) -> dict[str, Any]:
    values: dict[str, dict[str, Any]] = {IDS_BLOCK: {"value": ids}, REASON_BLOCK: {"value": reason or None}}
    urls = []
    if any(b.get("block_id") == CONVERSATION_BLOCK for b in view["blocks"]):
        values[CONVERSATION_BLOCK] = {"type": "conversations_select", "selected_conversation": conversation}
        urls = [
            {
                "block_id": CONVERSATION_BLOCK,
                "action_id": "value",
                "channel_id": conversation,
                "response_url": harness.slack.new_response_url(),
            }
        ]
    response = harness.dispatch(view_submission(view, values, user=user, response_urls=urls), FORM)
    assert response.status == 200
    harness.settle()
    return json.loads(response.body) if response.body else {}


class Step:
    """One Workflow Builder execution of `cancel_scheduled_mail`."""

    count = 0

    def __init__(self, harness: Harness, mail_ids: str, reason: str = "", requester: str = ALICE, **extra: Any):
        Step.count += 1
        self.harness = harness
        self.execution_id = f"Fx{Step.count:08d}"
        self.inputs = {"mail_ids": mail_ids, "requester": requester, "channel": ONCALL, **extra}
        if reason:
            self.inputs["reason"] = reason

    def run(self) -> Step:
        body = function_executed(self.inputs, execution_id=self.execution_id, bot_access_token=STEP_TOKEN)
        assert self.harness.dispatch(body, JSON).status == 200
        self.harness.settle()
        return self

    def prompt(self) -> tuple[dict[str, Any], str]:
        posted = [c for c in self.harness.slack.of("chat.postMessage") if buttons(c.payload)]
        assert posted, "the step posted no prompt"
        assert posted[-1].token == STEP_TOKEN, "the prompt must be posted with the execution's token"
        return posted[-1].payload, str(posted[-1].response["ts"])

    def click(self, action: str = "confirm", user: str = BOB) -> None:
        prompt, ts = self.prompt()
        body = button_click(
            buttons(prompt)[f"cancel_mail_{action}"],
            user=user,
            channel=ONCALL,
            response_url=self.harness.slack.new_response_url(),
            message_ts=ts,
            function={"execution_id": self.execution_id, "inputs": self.inputs, "bot_access_token": STEP_TOKEN},
        )
        assert self.harness.dispatch(body, FORM).status == 200
        self.harness.settle()

    def completions(self) -> list[Any]:
        return [
            c
            for c in self.harness.slack.calls
            if c.method.startswith("functions.complete") and c.payload.get("function_execution_id") == self.execution_id
        ]

    def outputs(self) -> dict[str, Any]:
        (call,) = self.completions()
        assert call.method == "functions.completeSuccess" and call.token == STEP_TOKEN
        return call.payload["outputs"]


def public_posts(harness: Harness) -> list[str]:
    texts = [
        blocks_text(c.payload)
        for c in harness.slack.delivered("response_url")
        if c.payload.get("response_type") == "in_channel"
    ]
    return texts + [blocks_text(c.payload) for c in harness.slack.delivered("chat.postMessage")]


# -- the reason ------------------------------------------------------------------------------------------


def test_command_reason_shows_in_prompt_and_outcome_and_audit(harness: Harness, audit_lines) -> None:
    _, prompt = harness.command("300 301 -- wrong segment")
    assert "`300`, `301`" in blocks_text(prompt) and "*Reason:* wrong segment" in blocks_text(prompt)
    harness.click(prompt)
    harness.settle()
    assert any("*Reason:* wrong segment" in text for text in public_posts(harness))
    assert sorted(harness.mailpartner.cancels) == ["300", "301"]  # `--`, `wrong`, `segment` were not ids
    reasons = {line["action"]: line.get("reason") for line in audit_lines()}
    assert reasons["request"] == "wrong segment" and reasons["outcome"] == "wrong segment"


def test_hostile_reason_notifies_nobody(harness: Harness) -> None:
    _, prompt = harness.command("300 — <!channel> <!here> <@U0BOSS0000> <https://evil.example|click> & co")
    shown = blocks_text(prompt)
    for command in ("<!channel>", "<!here>", "<@U0BOSS0000>", "<https://"):
        assert command not in shown
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U0BOSS0000&gt; &lt;https://evil.example|click&gt; &amp; co" in shown
    harness.click(prompt)
    harness.settle()
    assert all("<!channel>" not in text for text in public_posts(harness))


def test_required_reason_gets_usage_and_no_prompt(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_REQUIRE_REASON="true")
    _, message = harness.command("300")
    assert "reason is required" in message["text"] and not buttons(message)
    _, message = harness.command("300 -- because the segment is wrong")
    assert buttons(message)


def test_mention_reason_keeps_mentions_inside_it(harness: Harness) -> None:
    harness.mention("<@U0BOT00000> cancel 300 – asked by <@U0BOSS0000>")
    harness.settle()
    prompt, _ = harness.thread_prompt()
    assert "*Reason:* asked by &lt;@U0BOSS0000&gt;" in blocks_text(prompt)


# -- the form --------------------------------------------------------------------------------------------


def test_global_shortcut_form_posts_a_private_prompt_with_the_reason(harness: Harness, audit_lines) -> None:
    view = open_form(harness)
    assert {b.get("block_id") for b in view["blocks"]} >= {IDS_BLOCK, REASON_BLOCK, CONVERSATION_BLOCK}
    select = next(b for b in view["blocks"] if b.get("block_id") == CONVERSATION_BLOCK)["element"]
    assert select["default_to_current_conversation"] and select["response_url_enabled"]
    assert submit(harness, view, "300, 301", "wrong segment") == {}
    (prompt_call,) = [c for c in harness.slack.delivered("response_url") if buttons(c.payload)]
    assert prompt_call.payload["response_type"] == "ephemeral"
    assert "*Reason:* wrong segment" in blocks_text(prompt_call.payload)
    harness.click(prompt_call.payload)
    harness.settle()
    assert harness.mailpartner.cancels == {"300": 1, "301": 1}
    assert audit_lines()[0]["via"] == "shortcut"


@pytest.mark.parametrize(
    ("ids", "reason", "field", "words"),
    [
        ("abc!", "", IDS_BLOCK, "not a valid mail id"),
        ("", "", IDS_BLOCK, "Which mail"),
        (" ".join(str(n) for n in range(26)), "", IDS_BLOCK, "26 ids is too many"),
        ("300", "x" * 501, REASON_BLOCK, "501 characters"),
    ],
)
def test_form_errors_show_on_the_field(harness: Harness, ids: str, reason: str, field: str, words: str) -> None:
    view = open_form(harness)
    answer = submit(harness, view, ids, reason)
    assert answer["response_action"] == "errors" and words in answer["errors"][field]
    assert harness.mailpartner.requests == [] and not [c for c in harness.slack.calls if buttons(c.payload)]


def test_form_requires_a_reason_when_configured(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_REQUIRE_REASON="true")
    view = open_form(harness)
    assert next(b for b in view["blocks"] if b.get("block_id") == REASON_BLOCK)["optional"] is False
    answer = submit(harness, view, "300")
    assert "reason is required" in answer["errors"][REASON_BLOCK]


def test_form_refuses_a_channel_outside_the_allowed_ones(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_ALLOWED_CHANNELS=ONCALL)
    answer = submit(harness, open_form(harness), "300", conversation=OTHER)
    assert "cannot be cancelled from this channel" in answer["errors"][CONVERSATION_BLOCK]


def test_form_under_two_person_rule_posts_publicly(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_REQUIRE_SECOND_PERSON="true")
    submit(harness, open_form(harness), "300", "wrong list")
    (prompt_call,) = [c for c in harness.slack.delivered("response_url") if buttons(c.payload)]
    assert prompt_call.payload["response_type"] == "in_channel"
    harness.click(prompt_call.payload, user=ALICE)
    harness.settle()
    assert harness.mailpartner.requests == []
    harness.click(prompt_call.payload, user=BOB)
    harness.settle()
    assert harness.mailpartner.cancels == {"300": 1}


def test_message_shortcut_prefills_ids_and_prompts_in_its_thread(harness: Harness) -> None:
    message = {
        "text": 'Wrong segment! {"messageId": "m-77"} and `300`, batch 2026041200001; not 12345 or `a b`',
        "ts": "1800000000.000900",
    }
    view = open_form(harness, message=message)
    ids_field = next(b for b in view["blocks"] if b.get("block_id") == IDS_BLOCK)["element"]
    assert ids_field["initial_value"] == "m-77 300 2026041200001"
    assert not any(b.get("block_id") == CONVERSATION_BLOCK for b in view["blocks"])
    submit(harness, view, "m-77 300", "wrong segment")
    prompt, ts = harness.thread_prompt()
    (posted,) = [c for c in harness.slack.of("chat.postMessage") if buttons(c.payload)]
    assert posted.payload["thread_ts"] == "1800000000.000900" and posted.payload["channel"] == ONCALL
    harness.click(prompt, message_ts=ts, thread_ts="1800000000.000900")
    harness.settle()
    outcome = [c for c in harness.slack.delivered("chat.postMessage") if not buttons(c.payload)]
    assert outcome and outcome[-1].payload["thread_ts"] == "1800000000.000900"
    assert "*Reason:* wrong segment" in blocks_text(outcome[-1].payload)


# -- the Workflow Builder step ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mail_ids", "faults", "result", "cancelled_ids", "not_cancelled_ids"),
    [
        ("300, 305", {}, "cancelled", "300,305", ""),
        ("300 999", {}, "partly_cancelled", "300", "999"),
        ("303 999", {}, "not_cancelled", "", "303,999"),
        ("300 304", {}, "partly_cancelled", "300", "304"),  # 304 has gone out: MailPartner's code 7
        ("300 m0001", {"m0001": Fault(hang=True, times=9)}, "unknown", "300", "m0001"),
        ("m0002", {"m0002": Fault(reset=True, times=99)}, "not_cancelled", "", "m0002"),
    ],
)
def test_step_confirmed_completes_once_with_what_the_channel_read(
    harness: Harness, mailpartner, mail_ids, faults, result, cancelled_ids, not_cancelled_ids
) -> None:
    for mail, fault in faults.items():
        mailpartner.fault(mail, fault)
    step = Step(harness, mail_ids, reason="campaign to the wrong segment").run()
    prompt, _ = step.prompt()
    assert f"<@{ALICE}> asks, through a workflow" in blocks_text(prompt)
    assert "*Reason:* campaign to the wrong segment" in blocks_text(prompt)
    assert step.completions() == []
    step.click()
    outputs = step.outputs()
    assert outputs["result"] == result and outputs["cancelled"] is (result == "cancelled")
    assert (outputs["cancelled_ids"], outputs["not_cancelled_ids"]) == (cancelled_ids, not_cancelled_ids)
    channel_read = [t for t in public_posts(harness) if "Confirmed by" in t or "confirmed by" in t]
    assert channel_read
    for line in outputs["outcome"].splitlines():
        assert line.split(" `code")[0] in channel_read[-1]


def test_a_step_whose_every_mail_has_gone_out_completes_not_cancelled_without_a_prompt(harness: Harness) -> None:
    """Nothing left to cancel is an answer a workflow branches on, not a failed step."""
    step = Step(harness, "304").run()
    outputs = step.outputs()
    assert (outputs["result"], outputs["cancelled"]) == ("not_cancelled", False)
    assert (outputs["cancelled_ids"], outputs["not_cancelled_ids"]) == ("", "304")
    assert "Nothing left to cancel: `304` has already gone out" in outputs["outcome"]
    assert not [c for c in harness.slack.of("chat.postMessage") if buttons(c.payload)]
    assert any("Nothing left to cancel" in t for t in public_posts(harness))  # the channel reads why


def test_step_keep_ends_with_kept(harness: Harness) -> None:
    step = Step(harness, "300").run()
    step.click("keep", user=ALICE)
    outputs = step.outputs()
    assert outputs["result"] == "kept" and outputs["cancelled"] is False and outputs["not_cancelled_ids"] == "300"
    assert harness.mailpartner.requests == []


def test_step_confirm_after_expiry_ends_with_expired(harness: Harness) -> None:
    step = Step(harness, "300").run()
    harness.clock.now += harness.settings.prompt_ttl + 1
    step.click()
    assert step.outputs()["result"] == "expired"
    assert harness.mailpartner.requests == []


@pytest.mark.parametrize(
    ("mail_ids", "words"),
    [("abc! 300", "not a valid mail id"), ("", "Which mail"), (" ".join(str(n) for n in range(30)), "too many")],
)
def test_step_with_invalid_inputs_fails_without_a_prompt(harness: Harness, mail_ids: str, words: str) -> None:
    step = Step(harness, mail_ids).run()
    (call,) = step.completions()
    assert call.method == "functions.completeError" and words in call.payload["error"]
    assert not [c for c in harness.slack.calls if buttons(c.payload)]


def test_step_under_two_person_rule(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_REQUIRE_SECOND_PERSON="true")
    step = Step(harness, "300", requester=ALICE).run()
    step.click(user=ALICE)
    assert step.completions() == [] and harness.mailpartner.requests == []
    notes = [
        c.payload for c in harness.slack.delivered("response_url") if c.payload.get("response_type") == "ephemeral"
    ]
    assert any("second person" in blocks_text(n) for n in notes)
    step.click(user=BOB)
    assert step.outputs()["result"] == "cancelled"


def test_step_outsider_cannot_confirm(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_ALLOWED_USERS=f"{ALICE},{BOB}")
    step = Step(harness, "300").run()
    step.click(user=MALLORY)
    assert step.completions() == []
    step.click(user=BOB)
    assert step.outputs()["result"] == "cancelled"


def test_step_ends_once_even_when_clicked_twice(harness: Harness) -> None:
    step = Step(harness, "300").run()
    step.click()
    step.click()
    assert step.outputs()["result"] == "cancelled"
    assert harness.mailpartner.cancels == {"300": 1}


def test_step_event_delivered_twice_posts_one_prompt(harness: Harness) -> None:
    step = Step(harness, "300").run()
    step.run()
    assert len([c for c in harness.slack.calls if buttons(c.payload)]) == 1


def test_step_requires_a_reason_when_configured(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_REQUIRE_REASON="true")
    (call,) = Step(harness, "300").run().completions()
    assert call.method == "functions.completeError" and "reason is required" in call.payload["error"]


def test_a_bug_in_the_form_answers_in_the_form(harness: Harness, mocker, caplog) -> None:
    view = open_form(harness)
    mocker.patch("bot.inbound.listeners.shortcuts.parse_fields", side_effect=RuntimeError("bug"))
    answer = submit(harness, view, "300", "why")
    assert answer["response_action"] == "errors" and "went wrong" in answer["errors"][IDS_BLOCK]
    assert "listener failed on a view_submission: bug" in caplog.text and harness.mailpartner.requests == []


def test_a_bug_starting_a_step_ends_it_with_an_error(harness: Harness, mocker) -> None:
    mocker.patch("bot.inbound.listeners.workflow.parse_fields", side_effect=RuntimeError("bug"))
    (call,) = Step(harness, "300").run().completions()
    assert call.method == "functions.completeError" and "failed while starting this step" in call.payload["error"]
