"""Layer 1: `bulk-status` and `me` on httpx.MockTransport, and every MailPartner answer walked through every
part of the bot that reads its meaning (answers.py): words, summary, metrics, workflow, CLI, check."""

from __future__ import annotations

import logging

import httpx
import pytest

from bot.audit.metrics import result_label
from bot.cancels.workflow import StepResult, confirmed_outputs
from bot.cli import EXIT_ALL_CANCELLED, EXIT_NOT_CANCELLED, EXIT_UNKNOWN, exit_status
from bot.console.wire import blocks_text
from bot.mailpartner.answers import ANSWERS, REPORT_CODES, UNKNOWN_CODE, FailureKind, Fate, Report, report_of
from bot.mailpartner.client import AccountReport, CancelOutcome
from bot.mailpartner.sandbox import MailPartnerSandbox
from bot.ops.check import _judge
from bot.settings import Settings
from bot.words.blocks import outcome_message, render_outcome
from tests.test_mailpartner import KEY, client_for

pytestmark = pytest.mark.anyio

ROWS = [
    {"email": "a@client.fr", "token": "t1", "status": "Delivered", "cost": 1, "stopMail": False, "date": "1599061044"},
    {"email": "b@client.fr", "token": "t2", "status": "Pending", "cost": 1, "stopMail": False, "date": ""},
    {"email": "c@client.fr", "token": "t3", "status": "delivered", "cost": 1, "stopMail": False, "date": None},
]


def report_body(code: int, rows: object = None) -> httpx.Response:
    body: dict[str, object] = {"success": code == 200, "code": code, "messageId": "300"}
    if rows is not None:
        body["StatutResponseList"] = rows
    return httpx.Response(200, json=body)


# -- bulk-status -----------------------------------------------------------------------------------


async def test_delivery_report_counts_recipients_and_delivery() -> None:
    client, seen = client_for(report_body(200, ROWS))
    report = await client.delivery_report("300")
    assert report.report is Report.FOUND and (report.total, report.delivered) == (3, 2) and not report.gone_out
    assert report.recipients[0].date == 1599061044.0 and report.recipients[1].date is None
    (request,) = seen
    assert request.url.path == "/v1/bulk-status" and dict(request.url.params) == {"apiKey": KEY, "messageId": "300"}


async def test_delivered_to_everyone_has_gone_out() -> None:
    rows = [{**row, "status": "Delivered"} for row in ROWS]
    client, _ = client_for(report_body(200, rows))
    assert (await client.delivery_report("300")).gone_out


@pytest.mark.parametrize(
    ("code", "report"),
    [
        (1, Report.KEY_REFUSED),
        (3, Report.ID_MISSING),
        (4, Report.NO_REPORT),
        (10, Report.KEY_REFUSED),
        (11, Report.UNEXPECTED),
    ],
)
async def test_every_bulk_status_code(code: int, report: Report) -> None:
    client, _ = client_for(report_body(code))
    answer = await client.delivery_report("300")
    assert answer.report is report and answer.code == code and answer.total == 0 and not answer.gone_out


@pytest.mark.parametrize(
    "rows",
    [None, [], "nonsense", [1, 2], [{"status": None}], [{"email": 5, "status": ["Delivered"], "date": "soon"}]],
)
async def test_odd_report_bodies_never_raise(rows: object) -> None:
    """What a scheduled mail gets is undocumented: no list, an empty one, rows of any shape."""
    client, _ = client_for(report_body(200, rows))
    report = await client.delivery_report("300")
    assert report.report is Report.FOUND and not report.gone_out


@pytest.mark.parametrize(
    ("answer", "failure"),
    [
        (httpx.ReadTimeout("slow"), FailureKind.TIMEOUT),
        (httpx.ConnectError("refused"), FailureKind.CONNECTION),
        (httpx.Response(502, text="bad gateway"), FailureKind.HTTP_ERROR),
        (httpx.Response(200, text="<html>"), FailureKind.MALFORMED),
        (httpx.Response(200, json={"what": "ever"}), FailureKind.MALFORMED),
    ],
)
async def test_unanswered_reports_are_one_attempt_and_say_why(answer: object, failure: FailureKind) -> None:
    client, seen = client_for(answer)  # type: ignore[arg-type]
    report = await client.delivery_report("300", timeout=0.5)
    assert report.report is Report.UNANSWERED and report.failure is failure and len(seen) == 1


async def test_no_address_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client, _ = client_for(report_body(200, ROWS))
    await client.delivery_report("300")
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot"))
    assert "3 recipient(s)" in ours and "@client.fr" not in caplog.text  # (httpx's own lines are muted in the bot)


# -- me --------------------------------------------------------------------------------------------


async def test_account_names_the_user_and_the_credits() -> None:
    body = {"success": True, "code": 200, "user": {"username": "acme"},
            "credits": {"creditMail": 269082, "currency": "EUR", "balance": "10225.119"}}  # fmt: skip
    client, seen = client_for(httpx.Response(200, json=body))
    account = await client.account()
    assert (account.report, account.username, account.mail_credits) == (Report.FOUND, "acme", 269082)
    assert (account.currency, account.balance) == ("EUR", "10225.119")
    assert seen[0].url.path == "/v1/me" and dict(seen[0].url.params) == {"apiKey": KEY}


@pytest.mark.parametrize(
    ("answer", "report"),
    [
        (httpx.Response(200, json={"success": False, "code": 10, "message": "Clé API incorrecte"}), Report.KEY_REFUSED),
        (httpx.Response(200, json={"success": True, "code": 200, "user": "odd", "credits": [1]}), Report.FOUND),
        (httpx.Response(200, json={"success": True, "code": 200, "credits": {"creditMail": True}}), Report.FOUND),
        (httpx.ReadTimeout("slow"), Report.UNANSWERED),
        (httpx.Response(503, text="down"), Report.UNANSWERED),
    ],
)
async def test_account_answers_of_every_kind(answer: object, report: Report) -> None:
    client, _ = client_for(answer)  # type: ignore[arg-type]
    account = await client.account()
    assert account.report is report
    if report is Report.FOUND:
        assert account.mail_credits is None and account.username == ""


async def test_sandbox_answers_bulk_status_and_me() -> None:
    sandbox = MailPartnerSandbox(api_key="right")
    client = _sandbox_client(sandbox, "right")
    scheduled, sent, unreported = [await client.delivery_report(i) for i in ("300", "304", "302")]
    assert scheduled.report is Report.FOUND and scheduled.total == 1240 and scheduled.delivered == 0
    assert sent.gone_out and sent.total == 3
    assert unreported.report is Report.NO_REPORT and (await client.delivery_report("999")).report is Report.NO_REPORT
    assert (await client.account()).username == "sandbox"
    assert (await _sandbox_client(sandbox, "wrong").account()).report is Report.KEY_REFUSED


def _sandbox_client(sandbox: MailPartnerSandbox, key: str):
    from bot.mailpartner.client import MailPartnerClient

    return MailPartnerClient(key, base_url="https://sandbox.test/v1", transport=sandbox.transport())


# -- every answer through every consumer -----------------------------------------------------------


def _outcomes() -> list[CancelOutcome]:
    found = []
    for key in ANSWERS:
        if isinstance(key, FailureKind):
            found.append(CancelOutcome("300", failure=key, http_status=502))
        else:
            found.append(CancelOutcome("300", code=11 if key == UNKNOWN_CODE else key, message="m"))  # type: ignore[arg-type]
    return found


@pytest.mark.parametrize("outcome", _outcomes(), ids=lambda o: o.label)
def test_every_answer_means_one_thing_everywhere(outcome: CancelOutcome) -> None:
    meaning = outcome.meaning
    for lang in ("en", "fr"):
        assert "`300`" in render_outcome(outcome, lang)
    # Metrics count what answers.py names it.
    failure = outcome.failure.value if outcome.failure else None
    assert result_label(outcome.code, failure) == meaning.result
    # The bulk summary counts it in its column.
    summary = blocks_text(outcome_message([outcome, outcome], confirmer="U1", requester="U1", lang="en", sandbox=False))
    column = {"cancelled": "cancelled", "too_late": "too late", "already_sent": "already sent",
              "not_found": "not found", "failed": "failed"}[meaning.tally.value]  # fmt: skip
    assert f"2 {column}" in summary
    # The workflow step's result and the CLI's exit status follow the mail's fate.
    step = confirmed_outputs(("300",), [outcome], [], "en")["result"]
    expected = {
        Fate.CANCELLED: (StepResult.CANCELLED, EXIT_ALL_CANCELLED),
        Fate.NOT_CANCELLED: (StepResult.NOT_CANCELLED, EXIT_NOT_CANCELLED),
        Fate.UNKNOWN: (StepResult.UNKNOWN, EXIT_UNKNOWN),
    }[meaning.fate]
    assert (step, exit_status([outcome])) == (expected[0].value, expected[1])
    assert outcome.cancelled is (meaning.fate is Fate.CANCELLED)


def test_a_connection_failure_is_not_cancelled_for_the_cli_and_the_step_alike() -> None:
    outcome = CancelOutcome("300", failure=FailureKind.CONNECTION)
    assert exit_status([outcome]) == EXIT_NOT_CANCELLED
    assert confirmed_outputs(("300",), [outcome], [], "en")["result"] == StepResult.NOT_CANCELLED.value


@pytest.mark.parametrize("code", [*REPORT_CODES, 11, None])
def test_every_me_answer_is_judged_by_check(code: int | None) -> None:
    report = report_of(code)
    account = AccountReport(report, username="acme", mail_credits=5, code=code, message="m",
                            failure=FailureKind.TIMEOUT if code is None else None)  # fmt: skip
    finding = _judge(account, Settings(), "MAILPARTNER_API_KEY", 0.01)
    assert finding.ok is (report is Report.FOUND)
    assert KEY not in finding.text and ("@acme" in finding.text) is (report is Report.FOUND)
