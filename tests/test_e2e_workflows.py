"""Layer 3: the Workflow Builder step and the cancel form, against `python -m bot` in HTTP mode, driven over
loopback exactly as Slack drives them (a fake Slack Web API and a fake MailPartner beside it)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.console.local_slack import LocalSlack, SlackCall
from bot.console.wire import (
    FORM,
    JSON,
    blocks_text,
    button_click,
    buttons,
    function_executed,
    global_shortcut,
    view_submission,
)
from bot.inbound.forms import CONVERSATION_BLOCK, GLOBAL_SHORTCUT, IDS_BLOCK, REASON_BLOCK
from bot.settings import Settings
from tests.fakes import BotProcess, FakeMailPartner, Fault, bot_env, free_port
from tests.test_e2e import ALICE, BOB, CHANNEL, Driver
from tests.waiting import holds_for

PROMPT_LIFE = Settings.prompt_ttl  # the default: how long a prompt's buttons work

STEP_TOKEN = "xwfp-e2e-step-token"
_executions = itertools.count(1)


class WorkflowRun:
    """One execution of the `cancel_scheduled_mail` step, played as Slack plays it."""

    def __init__(self, driver: Driver, mail_ids: str, reason: str = "", requester: str = ALICE) -> None:
        self.driver, self.slack = driver, driver.slack
        self.execution_id = f"Fx0E2E{next(_executions):06d}"
        self.inputs = {"mail_ids": mail_ids, "reason": reason, "requester": requester, "channel": CHANNEL}

    def start(self) -> WorkflowRun:
        body = function_executed(self.inputs, execution_id=self.execution_id, bot_access_token=STEP_TOKEN)
        assert self.driver.post(body, JSON).status_code == 200
        return self

    def click(self, prompt: SlackCall, action: str = "confirm", user: str = BOB, driver: Driver | None = None) -> None:
        body = button_click(
            buttons(prompt.payload)[f"cancel_mail_{action}"],
            user=user,
            channel=CHANNEL,
            response_url=self.slack.new_response_url(),
            message_ts=str(prompt.response["ts"]),
            function={"execution_id": self.execution_id, "inputs": self.inputs, "bot_access_token": STEP_TOKEN},
        )
        assert (driver or self.driver).post(body, FORM).status_code == 200

    def completion(self, timeout: float = 15) -> SlackCall:
        (call,) = self.slack.wait_for(self._mine, timeout=timeout)
        return call

    def completions(self) -> list[SlackCall]:
        return [c for c in self.slack.calls if self._mine(c)]

    def outputs(self) -> dict[str, Any]:
        call = self.completion()
        assert call.method == "functions.completeSuccess" and call.token == STEP_TOKEN
        return call.payload["outputs"]

    def _mine(self, call: SlackCall) -> bool:
        return call.method.startswith("functions.complete") and call.payload.get("function_execution_id") == (
            self.execution_id
        )


def posted_earlier(prompt: SlackCall, seconds: float) -> SlackCall:
    """`prompt` as a click brings it back `seconds` after it was posted: its buttons carry the time it was
    issued (bot/requests/ticket.py), so moving that back ages the prompt without waiting for it."""
    payload = copy.deepcopy(prompt.payload)
    for button in buttons(payload).values():
        ticket = json.loads(button["value"])
        ticket["at"] -= seconds
        button["value"] = json.dumps(ticket)
    return dataclasses.replace(prompt, payload=payload)


def start_bot(tmp: Path, slack: LocalSlack, mailpartner: FakeMailPartner, **extra: str) -> BotProcess:
    env = bot_env(free_port(), slack.api_url, mailpartner.base_url, MAILPARTNER_TIMEOUT="1", MAILPARTNER_DEADLINE="3")
    env.update(extra)
    bot = BotProcess(env, tmp / f"bot-{time.monotonic_ns()}.log")
    bot.wait_healthy()
    return bot


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Driver, FakeMailPartner, LocalSlack]]:
    slack = LocalSlack().start()
    mailpartner = FakeMailPartner(extra_mails=50).start()
    bot = start_bot(tmp_path_factory.mktemp("bot"), slack, mailpartner)
    try:
        yield Driver(bot, slack), mailpartner, slack
    finally:
        bot.stop()
        mailpartner.stop()
        slack.stop()
    assert "Traceback" not in bot.log(), bot.log()
    assert STEP_TOKEN not in bot.log()


def newest_prompt(slack: LocalSlack, before: int) -> SlackCall:
    """The prompt posted after the `before` ones already there; it must carry the run's own token."""
    found = slack.wait_for(lambda c: c.method == "chat.postMessage" and buttons(c.payload), count=before + 1)
    assert len(found) == before + 1, "the step posted no prompt"
    assert found[-1].token == STEP_TOKEN, "a workflow prompt must be posted with the execution's token"
    return found[-1]


def prompts(slack: LocalSlack) -> int:
    return len([c for c in slack.calls if c.method == "chat.postMessage" and buttons(c.payload)])


RESULTS = [
    ("m0001 m0002", {}, "confirm", "cancelled", "m0001,m0002", ""),
    ("m0003 999", {}, "confirm", "partly_cancelled", "m0003", "999"),
    ("303", {}, "confirm", "not_cancelled", "", "303"),
    ("m0004", {"m0004": Fault(hang=True, times=9)}, "confirm", "unknown", "", "m0004"),
    ("m0005", {}, "keep", "kept", "", "m0005"),
]


@pytest.mark.parametrize(
    ("mail_ids", "faults", "action", "result", "cancelled_ids", "not_cancelled_ids"),
    RESULTS,
    ids=[r[3] for r in RESULTS],
)
def test_workflow_step_ends_once_with_the_result(
    world, mail_ids, faults, action, result, cancelled_ids, not_cancelled_ids
) -> None:
    driver, mailpartner, slack = world
    for mail, fault in faults.items():
        mailpartner.fault(mail, fault)
    before = prompts(slack)
    run = WorkflowRun(driver, mail_ids, reason="sent to the wrong segment").start()
    prompt = newest_prompt(slack, before)
    assert "through a workflow" in blocks_text(prompt.payload) and "wrong segment" in blocks_text(prompt.payload)
    run.click(prompt, action)
    outputs = run.outputs()
    assert outputs["result"] == result and outputs["cancelled"] is (result == "cancelled")
    assert (outputs["cancelled_ids"], outputs["not_cancelled_ids"]) == (cancelled_ids, not_cancelled_ids)
    if action == "confirm":  # the outcome output says what the channel was told
        told = slack.wait_for(
            lambda c: (
                c.is_response_url
                and c.payload.get("response_type") == "in_channel"
                and all(f"`{m}`" in blocks_text(c.payload) for m in mail_ids.split())
            )
        )
        assert told
        first_line = outputs["outcome"].splitlines()[0].split(" `code")[0].split(" Asking again")[0]
        assert first_line in blocks_text(told[-1].payload)
    holds_for(lambda: len(run.completions()) == 1, 0.3, what="one end for the step")


def test_invalid_inputs_end_the_step_with_an_error_and_no_prompt(world) -> None:
    driver, _, slack = world
    before = prompts(slack)
    run = WorkflowRun(driver, "300, ../etc/passwd").start()
    call = run.completion()
    assert call.method == "functions.completeError" and "not a valid mail id" in call.payload["error"]
    assert call.token == STEP_TOKEN
    assert prompts(slack) == before


def test_form_over_http_valid_and_invalid_then_outcome_with_the_reason(world) -> None:
    driver, mailpartner, slack = world
    assert driver.post(global_shortcut(GLOBAL_SHORTCUT, user=ALICE), FORM).status_code == 200
    (opened,) = slack.wait_for(lambda c: c.method == "views.open")
    view = opened.response["view"]
    response_url = slack.new_response_url()
    urls = [{"block_id": CONVERSATION_BLOCK, "action_id": "value", "channel_id": CHANNEL, "response_url": response_url}]

    def send(ids: str, reason: str) -> Any:
        values = {
            IDS_BLOCK: {"value": ids},
            REASON_BLOCK: {"value": reason},
            CONVERSATION_BLOCK: {"type": "conversations_select", "selected_conversation": CHANNEL},
        }
        return driver.post(view_submission(view, values, user=ALICE, response_urls=urls), FORM)

    bad = send("m0010 not/an/id", "typo")
    assert bad.status_code == 200 and bad.json()["response_action"] == "errors"
    assert "not a valid mail id" in bad.json()["errors"][IDS_BLOCK]
    good = send("m0010", "wrong list <!channel> <@U0BOSS0000>")
    assert good.status_code == 200 and not good.text
    path = response_url.removeprefix(slack.url)
    (prompt,) = slack.wait_for(lambda c: c.path == path and buttons(c.payload))
    assert prompt.payload["response_type"] == "ephemeral"
    _, click_url = driver.click(prompt.payload)
    outcome = blocks_text(driver.outcome_at(click_url))
    assert "`m0010` is cancelled" in outcome and "wrong list &lt;!channel&gt; &lt;@U0BOSS0000&gt;" in outcome
    assert "<!channel>" not in outcome and "<@U0BOSS0000>" not in outcome
    assert mailpartner.cancels["m0010"] == 1


def test_two_person_rule_expiry_and_a_click_after_a_restart(tmp_path: Path) -> None:
    """Another process can end a step this one prompted for: everything needed rides with the click."""
    with LocalSlack() as slack:
        mailpartner = FakeMailPartner().start()
        settings = {"CANCEL_MAIL_REQUIRE_SECOND_PERSON": "true"}
        first = start_bot(tmp_path, slack, mailpartner, **settings)
        second = None
        try:
            driver = Driver(first, slack)
            run = WorkflowRun(driver, "300", reason="wrong segment").start()
            expiring = WorkflowRun(driver, "301").start()
            (prompt, expiring_prompt) = slack.wait_for(
                lambda c: c.method == "chat.postMessage" and buttons(c.payload), count=2
            )
            if "`301`" in blocks_text(prompt.payload):
                prompt, expiring_prompt = expiring_prompt, prompt
            run.click(prompt, user=ALICE)  # the requester cannot confirm their own request
            own = slack.wait_for(lambda c: c.is_response_url and "second person" in blocks_text(c.payload))
            assert own and run.completions() == [] and mailpartner.requests == []
            first.stop()
            second = start_bot(tmp_path, slack, mailpartner, **settings)
            run.click(prompt, user=BOB, driver=Driver(second, slack))
            outputs = run.outputs()
            assert outputs["result"] == "cancelled" and outputs["cancelled_ids"] == "300"
            expiring.click(posted_earlier(expiring_prompt, PROMPT_LIFE + 1), user=BOB, driver=Driver(second, slack))
            assert expiring.outputs()["result"] == "expired"
            assert mailpartner.cancels == {"300": 1}
        finally:
            first.stop()
            if second is not None:
                second.stop()
            mailpartner.stop()
