"""Layer 1: settings validation, command grammar, prompt tickets, access rules and the sandbox's rules."""

from __future__ import annotations

import asyncio

import pytest

from bot.batches import Batches
from bot.cancels.workflow import StepResult, confirmed_outputs, outcome_result
from bot.inbound.access import AccessPolicy, Refusal
from bot.inbound.forms import ids_in_message
from bot.mailpartner.client import CancelOutcome, FailureKind
from bot.mailpartner.sandbox import MailPartnerSandbox, MailState
from bot.requests.commands import (
    CancelRequest,
    UsageReason,
    UsageRequest,
    parse_fields,
    parse_mention,
    parse_slash_command,
)
from bot.requests.ticket import PromptTicket, ticket_fits
from bot.settings import Mode, Settings, SettingsError

HTTP_ENV = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "MAILPARTNER_API_KEY": "k"}

# -- settings ------------------------------------------------------------------------------------------


def test_defaults_follow_the_contract() -> None:
    settings = Settings.from_env(HTTP_ENV)
    assert settings.mode is Mode.HTTP
    assert (settings.port, settings.slack_api_url, settings.mailpartner_base_url) == (
        3000,
        "https://slack.com/api/",
        "https://api.mailpartner.fr/v1",
    )
    assert (settings.mailpartner_timeout, settings.language, settings.log_level) == (10.0, "en", "INFO")
    assert settings.prompt_ttl == 900 and not settings.require_second_person


def test_modes() -> None:
    assert Settings.from_env({**HTTP_ENV, "SLACK_APP_TOKEN": "xapp-1"}).mode is Mode.SOCKET
    assert Settings.from_env({}, console=True).mode is Mode.CONSOLE


def test_the_drain_grace_may_be_zero_but_never_negative() -> None:
    assert Settings.from_env(HTTP_ENV).drain_grace == 5.0
    assert Settings.from_env({**HTTP_ENV, "CANCEL_MAIL_DRAIN_GRACE": "0"}).drain_grace == 0.0
    for wrong in ("-1", "soon", "301"):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({**HTTP_ENV, "CANCEL_MAIL_DRAIN_GRACE": wrong})
        (problem,) = caught.value.problems
        assert "CANCEL_MAIL_DRAIN_GRACE" in problem and wrong in problem
    with pytest.raises(SettingsError, match="more than 0"):  # the other durations still refuse 0
        Settings.from_env({**HTTP_ENV, "MAILPARTNER_TIMEOUT": "0"})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "SLACK_BOT_TOKEN": "xoxp-user-token",
                "PORT": "eighty",
                "MAILPARTNER_TIMEOUT": "-1",
                "BOT_LANGUAGE": "de",
                "LOG_LEVEL": "LOUD",
                "CANCEL_MAIL_ALLOWED_USERS": "U0ALICE000,alice",
                "CANCEL_MAIL_ALLOWED_CHANNELS": "#oncall",
                "CANCEL_MAIL_REQUIRE_SECOND_PERSON": "maybe",
                "SLACK_API_URL": "slack.com",
            }
        )
    problems = caught.value.problems
    for name in (
        "SLACK_BOT_TOKEN",
        "PORT",
        "MAILPARTNER_TIMEOUT",
        "BOT_LANGUAGE",
        "LOG_LEVEL",
        "CANCEL_MAIL_ALLOWED_USERS",
        "CANCEL_MAIL_ALLOWED_CHANNELS",
        "CANCEL_MAIL_REQUIRE_SECOND_PERSON",
        "SLACK_SIGNING_SECRET",
        "MAILPARTNER_API_KEY",
        "SLACK_API_URL",
    ):
        assert sum(p.startswith(name) for p in problems) == 1, (name, problems)
    assert "alice" in " ".join(problems)


def test_api_key_not_needed_with_sandbox_and_hidden_from_repr() -> None:
    settings = Settings.from_env({**HTTP_ENV, "MAILPARTNER_API_KEY": "topsecret", "MAILPARTNER_SANDBOX": "yes"})
    assert settings.mailpartner_sandbox and "topsecret" not in repr(settings)
    del_key = {k: v for k, v in HTTP_ENV.items() if k != "MAILPARTNER_API_KEY"}
    assert Settings.from_env({**del_key, "MAILPARTNER_SANDBOX": "true"}).mailpartner_sandbox


def test_socket_mode_needs_bot_token() -> None:
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN is required in Socket Mode"):
        Settings.from_env({"SLACK_APP_TOKEN": "xapp-1", "MAILPARTNER_API_KEY": "k"})


def test_lists_are_parsed() -> None:
    settings = Settings.from_env(
        {**HTTP_ENV, "CANCEL_MAIL_ALLOWED_USERS": " U0A1, W0B2 ,", "CANCEL_MAIL_ALLOWED_USERGROUPS": "S0ONCALL"}
    )
    assert settings.allowed_users == {"U0A1", "W0B2"} and settings.allowed_usergroups == {"S0ONCALL"}


# -- commands and tickets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("300", CancelRequest(("300",))),
        (" 300  301,302 300 ", CancelRequest(("300", "301", "302"))),
        ("cancel abc-DEF_1", CancelRequest(("abc-DEF_1",))),
        ("", UsageRequest(UsageReason.NO_ID)),
        ("help", UsageRequest(UsageReason.HELP)),
        ("300 <script>", UsageRequest(UsageReason.INVALID_ID, "<script>")),
        ("a" * 65, UsageRequest(UsageReason.ID_TOO_LONG, "a" * 24 + "…")),
        ("history " + "b" * 70, UsageRequest(UsageReason.ID_TOO_LONG, "b" * 24 + "…")),
        (" ".join(str(i) for i in range(26)), UsageRequest(UsageReason.TOO_MANY, "26")),
    ],
)
def test_slash_grammar(text: str, expected: object) -> None:
    assert parse_slash_command(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@U0BOT> cancel 300", CancelRequest(("300",))),
        ("<@U0BOT|bot> annuler 300 301", CancelRequest(("300", "301"))),
        ("<@U0BOT>", UsageRequest(UsageReason.HELP)),
        ("<@U0BOT> help", UsageRequest(UsageReason.HELP)),
        ("<@U0BOT> delete 300", UsageRequest(UsageReason.UNKNOWN_VERB, "delete")),
        ("<@U0BOT> cancel", UsageRequest(UsageReason.NO_ID)),
    ],
)
def test_mention_grammar(text: str, expected: object) -> None:
    assert parse_mention(text) == expected


def test_ticket_round_trip_and_size() -> None:
    ticket = PromptTicket(
        tuple("x" * 62 + f"{i:02d}" for i in range(25)),
        "U0ALICE000",
        "C0ONCALL00",
        1800000000.123,
        "1800000000.000100",
        True,
    )
    value = ticket.encode()
    assert len(value) <= 2000 and PromptTicket.decode(value) == ticket


@pytest.mark.parametrize(
    "value",
    [
        "",
        "null",
        "{}",
        '{"v":1,"ids":["a b"],"r":"U","c":"C","at":1}',
        '{"v":2,"ids":["1"],"r":"U","c":"C","at":1}',
        '{"v":1,"ids":[],"r":"U","c":"C","at":1}',
    ],
)
def test_ticket_rejects_foreign_values(value: str) -> None:
    with pytest.raises(ValueError):
        PromptTicket.decode(value)


# -- access --------------------------------------------------------------------------------------------


def test_access_rules() -> None:
    settings = Settings.from_env(
        {
            **HTTP_ENV,
            "CANCEL_MAIL_ALLOWED_USERS": "U0A,U0B",
            "CANCEL_MAIL_ALLOWED_CHANNELS": "C0ONCALL",
            "CANCEL_MAIL_REQUIRE_SECOND_PERSON": "1",
        }
    )
    policy = AccessPolicy(settings)
    ticket = PromptTicket(("1",), "U0A", "C0ONCALL", 0, second_person=True)
    assert policy.check_request("U0A", "C0ONCALL") is None
    assert policy.check_request("U0X", "C0ONCALL") is Refusal.NOT_ALLOWED_USER
    assert policy.check_request("U0A", "C0OTHER") is Refusal.NOT_ALLOWED_CHANNEL
    assert policy.check_confirm("U0A", "C0ONCALL", ticket) is Refusal.OWN_REQUEST
    assert policy.check_confirm("U0B", "C0ONCALL", ticket) is None
    assert policy.check_keep("U0A", "C0ONCALL", ticket) is None
    assert policy.check_keep("U0X", "C0ONCALL", ticket) is Refusal.NOT_ALLOWED_USER


def test_two_person_rule_binds_prompts_made_before_it() -> None:
    policy = AccessPolicy(Settings.from_env({**HTTP_ENV, "CANCEL_MAIL_REQUIRE_SECOND_PERSON": "true"}))
    old_prompt = PromptTicket(("1",), "U0A", "C0ONCALL", 0, second_person=False)
    assert policy.check_confirm("U0A", "C0ONCALL", old_prompt) is Refusal.OWN_REQUEST


def test_everyone_allowed_by_default() -> None:
    assert AccessPolicy(Settings.from_env(HTTP_ENV)).check_request("U0ANY", "C0ANY") is None


# -- sandbox -------------------------------------------------------------------------------------------


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_sandbox_rules() -> None:
    sandbox = MailPartnerSandbox(
        (("m1", "s", 301, False, 1), ("m2", "s", 299, False, 1), ("m3", "s", -1, False, 1)), api_key="right"
    )
    assert sandbox.cancel("", "m1") == 1
    assert sandbox.cancel("wrong", "m1") == 10
    assert sandbox.cancel("right", "") == 3
    assert sandbox.cancel("right", "nope") == 4
    assert sandbox.cancel("right", "m2") == 6  # 299 s left: under 5 minutes
    assert sandbox.cancel("right", "m3") == 7  # the send time has passed
    assert sandbox.cancel("right", "m1") == 200  # 301 s left: still cancellable


def test_sandbox_cancel_then_again() -> None:
    sandbox = MailPartnerSandbox()
    assert sandbox.cancel("any", "300") == 200
    assert sandbox.cancel("any", "300") == 5
    states = {mail.message_id: state for mail, state in sandbox.mails()}
    assert (
        states["303"] is MailState.LOCKED and states["304"] is MailState.SENT and states["305"] is MailState.CANCELLED
    )


class FakeGroupsClient:
    def __init__(self) -> None:
        self.members = {"S0ONCALL": ["U0A"]}
        self.calls = 0
        self.error: str = ""

    async def usergroups_users_list(self, usergroup: str) -> dict[str, list[str]]:
        from slack_sdk.errors import SlackApiError
        from slack_sdk.web import SlackResponse

        self.calls += 1
        if self.error:
            response = SlackResponse(
                client=None,
                http_verb="POST",
                api_url="",
                req_args={},
                data={"ok": False, "error": self.error},
                headers={},
                status_code=200,
            )
            raise SlackApiError("failed", response)
        return {"users": self.members[usergroup]}


@pytest.mark.anyio
async def test_usergroup_cache_serves_stale_while_refreshing() -> None:
    from bot.inbound.access import UserGroupDirectory

    client, clock = FakeGroupsClient(), Clock()
    directory = UserGroupDirectory(client, frozenset({"S0ONCALL"}), ttl=300, clock=clock)  # type: ignore[arg-type]
    assert directory.members() == frozenset() and not directory.loaded  # never read: nobody, until load()
    first, second = await asyncio.gather(directory.load(), directory.load())
    assert first == second == {"U0A"} and client.calls == 1  # the checks waiting at first share one read
    assert directory.members() == {"U0A"} and client.calls == 1  # cached
    client.members["S0ONCALL"] = ["U0B"]
    clock.now += 301
    assert directory.members() == {"U0A"}  # stale answer now, refresh in the background
    assert directory.members() == {"U0A"}  # one refresh at a time
    async with asyncio.timeout(5):
        while directory.members() != {"U0B"}:
            await asyncio.sleep(0.01)
    assert client.calls == 2


@pytest.mark.anyio
async def test_usergroup_lookup_failure_allows_nobody_new(caplog: pytest.LogCaptureFixture) -> None:
    from bot.inbound.access import UserGroupDirectory

    client = FakeGroupsClient()
    client.error = "missing_scope"
    directory = UserGroupDirectory(client, frozenset({"S0ONCALL"}))  # type: ignore[arg-type]
    assert await directory.load() == frozenset() and not directory.loaded  # the next check asks again
    assert "missing_scope" in caplog.text
    client.error = ""
    assert await directory.load() == {"U0A"} and client.calls == 2


# -- reasons, the form's id rule, the workflow step's result -------------------------------------------


@pytest.mark.parametrize(
    ("text", "ids", "reason"),
    [
        ("300 301 -- wrong segment", ("300", "301"), "wrong segment"),
        ("300 — wrong segment", ("300",), "wrong segment"),
        ("300 – wrong -- segment", ("300",), "wrong -- segment"),
        ("300--x", ("300--x",), ""),  # no space around: not a reason mark, and `-` is allowed in an id
        ("300 301 —", ("300", "301"), ""),
        ("300 --", ("300",), ""),
        ("300 -- a &lt; b &amp;&amp; <!channel>", ("300",), "a < b && <!channel>"),
        ("300 -- tab\tand\x07bell", ("300",), "tab\tandbell"),
    ],
)
def test_reason_after_the_mark(text: str, ids: tuple[str, ...], reason: str) -> None:
    assert parse_slash_command(text) == CancelRequest(ids, reason)


def test_reason_limits() -> None:
    assert parse_slash_command("300 -- " + "x" * 500) == CancelRequest(("300",), "x" * 500)
    assert parse_slash_command("300 -- " + "x" * 501) == UsageRequest(UsageReason.REASON_TOO_LONG, "501")
    assert parse_slash_command("300", require_reason=True) == UsageRequest(UsageReason.REASON_REQUIRED)
    assert parse_mention("<@U0BOT> cancel 300 -- hi <@U0BOSS>") == CancelRequest(("300",), "hi <@U0BOSS>")
    long_ids = " ".join(f"{n:02d}" + "x" * 62 for n in range(25))
    assert parse_slash_command(long_ids + " -- " + "why " * 100) == UsageRequest(UsageReason.TOO_LONG)
    assert isinstance(parse_slash_command(long_ids + " -- short reason"), CancelRequest)
    assert parse_fields("help", "") == CancelRequest(("help",))  # no usage in a form: a well-formed id


def test_ticket_carries_reason_and_workflow_within_slacks_limit() -> None:
    ticket = PromptTicket(("300",), "U0A", "C0ONCALL", 1.5, reason="é" * 500, workflow=True)
    value = ticket.encode()
    assert len(value) <= 2000 and PromptTicket.decode(value) == ticket
    assert ticket_fits(("300",), "é" * 500) and not ticket_fits(
        tuple(f"{n:02d}" + "x" * 62 for n in range(25)), "y" * 300
    )


def test_ids_in_message_rule() -> None:
    text = (
        'Sent {"messageId": "m-1"}, messageId=m-2 and messageId: \'m_3\'; see `300` and `not an id` '
        "and `300` again; batch 2026041200001, ticket 12345, 1234567-beta"
    )
    assert ids_in_message(text) == ["m-1", "m-2", "m_3", "300", "2026041200001"]
    assert ids_in_message(" ".join(f"`{n}`" for n in range(40))) == [str(n) for n in range(25)]


def _outcome(mail: str, code: int | None = None, failure: FailureKind | None = None) -> CancelOutcome:
    return CancelOutcome(mail, code=code, failure=failure)


@pytest.mark.parametrize(
    ("outcomes", "lost", "result"),
    [
        ([_outcome("1", 200), _outcome("2", 5)], [], StepResult.CANCELLED),
        ([_outcome("1", 200), _outcome("2", 4)], [], StepResult.PARTLY_CANCELLED),
        ([_outcome("1", 6), _outcome("2", 7)], [], StepResult.NOT_CANCELLED),
        ([_outcome("1", failure=FailureKind.CONNECTION)], [], StepResult.NOT_CANCELLED),
        ([_outcome("1", 200), _outcome("2", failure=FailureKind.TIMEOUT)], [], StepResult.UNKNOWN),
        ([_outcome("1", failure=FailureKind.MALFORMED)], [], StepResult.UNKNOWN),
        ([_outcome("1", failure=FailureKind.HTTP_ERROR)], [], StepResult.UNKNOWN),
        ([_outcome("1", 200)], ["2"], StepResult.UNKNOWN),
    ],
)
def test_step_result_table(outcomes: list[CancelOutcome], lost: list[str], result: StepResult) -> None:
    assert outcome_result(outcomes, lost) is result


def test_confirmed_outputs() -> None:
    outputs = confirmed_outputs(["1", "2"], [_outcome("1", 200), _outcome("2", 4)], [], "fr", sandbox=True)
    assert outputs["result"] == "partly_cancelled" and outputs["cancelled"] is False
    assert (outputs["cancelled_ids"], outputs["not_cancelled_ids"]) == ("1", "2")
    assert str(outputs["outcome"]).startswith("[BAC À SABLE] :white_check_mark: L'envoi du mail `1` est annulé")


@pytest.mark.anyio
async def test_a_batch_takes_what_is_queued_and_what_comes_within_the_linger() -> None:
    source: Batches[int] = Batches(limit=100, capacity=1000, linger=0.2)
    for i in range(5):
        source.put(i)
    asyncio.get_running_loop().call_later(0.02, source.put, 5)
    assert await source.next() == [0, 1, 2, 3, 4, 5]
    quick: Batches[int] = Batches(limit=100, capacity=1000, linger=0.05)
    asyncio.get_running_loop().call_later(0.3, quick.put, 6)
    quick.put(7)
    assert await quick.next() == [7]  # 6 comes after the linger: the next batch
    assert await quick.next() == [6]


@pytest.mark.anyio
async def test_an_urgent_item_cuts_the_linger_short() -> None:
    source: Batches[str] = Batches(limit=100, capacity=1000, linger=30.0, urgent=str.isupper, urgent_linger=0.01)
    source.put("row")
    asyncio.get_running_loop().call_later(0.05, source.put, "CLAIM")
    async with asyncio.timeout(5):  # not the 30 s linger: someone waits for the claim
        assert await source.next() == ["row", "CLAIM"]


@pytest.mark.anyio
async def test_a_batch_stops_at_its_limit_and_a_close_lets_the_rest_out() -> None:
    source: Batches[int] = Batches(limit=2, capacity=4, linger=5.0)
    assert all(source.put(item) for item in (1, 2, 3, 4)) and not source.put(5)  # past its capacity
    async with asyncio.timeout(4):  # a full batch does not linger (its linger is 5 s)
        assert await source.next() == [1, 2]
    source.close()
    assert not source.put(6)
    async with asyncio.timeout(4):  # closed: no linger either
        assert await source.next() == [3, 4]
    assert await source.next() is None
