"""Several MailPartner accounts, and the preview: which key each mail is cancelled with, what MailPartner
says of the mail before the click, and that no recipient's address ever reaches a public message or a log."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.console.wire import blocks_text, buttons
from bot.mailpartner.accounts import Accounts, split_ref
from bot.mailpartner.answers import Report
from bot.mailpartner.client import MailPartnerClient
from bot.mailpartner.sandbox import BRAND_B_MAILS
from bot.ops.check import check_mailpartner
from bot.settings import Settings, SettingsError
from tests.conftest import BOB, ONCALL, Harness
from tests.fakes import API_KEY, FakeMailPartner, Fault

pytestmark = pytest.mark.anyio

KEY_B = "mp-brand-b-key-0123456789"
BRAND_B = {"MAILPARTNER_ACCOUNT_BRAND_B_API_KEY": KEY_B}
OTHER_CHANNEL = "C0BRANDB00"


@pytest.fixture
def mailpartner() -> Iterator[FakeMailPartner]:
    """MailPartner with two accounts: the default key's mails, and brand-b's (its own 301, and 310)."""
    fake = FakeMailPartner(others={KEY_B: BRAND_B_MAILS}).start()
    yield fake
    fake.stop()


def keys_used(fake: FakeMailPartner, mail: str) -> list[str]:
    return [r["apiKey"] for r in fake.requests if r["messageId"] == mail]


# -- settings ------------------------------------------------------------------------------------------


def test_accounts_come_from_the_key_and_from_named_keys(tmp_path: Path) -> None:
    (tmp_path / "c").write_text("key-c\n")
    settings = Settings.from_env(
        {
            "MAILPARTNER_API_KEY": "key-default",
            "MAILPARTNER_ACCOUNT_BRAND_A_API_KEY": "key-a",
            "MAILPARTNER_ACCOUNT_CLIENT_C_API_KEY_FILE": str(tmp_path / "c"),
            "CANCEL_MAIL_CHANNEL_ACCOUNTS": f"{ONCALL}=brand-a, {OTHER_CHANNEL}=client-c",
        },
        console=True,
    )
    assert dict(settings.mailpartner_accounts) == {"default": "key-default", "brand-a": "key-a", "client-c": "key-c"}
    assert dict(settings.channel_accounts) == {ONCALL: "brand-a", OTHER_CHANNEL: "client-c"}
    assert "key-a" not in repr(settings) and "key-default" not in repr(settings)


def test_a_named_key_alone_is_enough_and_wrong_settings_say_what_to_fix() -> None:
    alone = Settings.from_env({"MAILPARTNER_ACCOUNT_BRAND_A_API_KEY": "key-a"}, console=True)
    assert dict(alone.mailpartner_accounts) == {"brand-a": "key-a"}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "MAILPARTNER_API_KEY": "k",
                "MAILPARTNER_ACCOUNT_DEFAULT_API_KEY": "k2",
                "MAILPARTNER_ACCOUNT__X_API_KEY": "k3",
                "CANCEL_MAIL_CHANNEL_ACCOUNTS": f"{ONCALL}=brand-z,general=default",
            },
            console=True,
        )
    problems = "\n".join(caught.value.problems)
    assert "MAILPARTNER_ACCOUNT_DEFAULT_API_KEY names the account `default` again" in problems
    assert "MAILPARTNER_ACCOUNT__X_API_KEY" in problems
    assert "brand-z`, which is not set (default)" in problems and "'general=default'" in problems
    assert "k2" not in problems and "k3" not in problems


# -- routing -------------------------------------------------------------------------------------------


def accounts_on(fake: FakeMailPartner, *, default: bool = True, wait: float = 2.0, **channels: str) -> Accounts:
    keys = {"default": API_KEY, "brand-b": KEY_B} if default else {"brand-b": KEY_B, "brand-c": API_KEY}
    clients = {name: MailPartnerClient(key, base_url=fake.base_url, timeout=2) for name, key in keys.items()}
    return Accounts(clients, channels=channels, wait=wait)


async def test_each_id_goes_to_the_account_that_knows_it(mailpartner: FakeMailPartner) -> None:
    accounts = accounts_on(mailpartner)
    preview = await accounts.preview(("300", "310", "301", "999", "brand-b:301"))
    # 300: only default knows it; 310: only brand-b; 301: both, so default; 999: none, so default.
    assert preview.refs == ("default:300", "brand-b:310", "default:301", "default:999", "brand-b:301")
    assert preview.report("brand-b:310").total == 415 and preview.report("brand-b:301").total == 2300
    assert preview.report("default:999").report.value == "no_report"
    assert sorted(r["apiKey"] for r in mailpartner.reports if r["messageId"] == "310") == sorted([API_KEY, KEY_B])
    await accounts.aclose()


async def test_a_channel_account_or_a_named_one_asks_nobody_else(mailpartner: FakeMailPartner) -> None:
    accounts = accounts_on(mailpartner, **{OTHER_CHANNEL: "brand-b"})
    assert (await accounts.preview(("301",), OTHER_CHANNEL)).refs == ("brand-b:301",)
    assert (await accounts.preview(("default:310",), OTHER_CHANNEL)).refs == ("default:310",)
    assert [r["apiKey"] for r in mailpartner.reports] == [KEY_B, API_KEY]
    await accounts.aclose()


async def test_without_a_default_an_id_two_accounts_know_must_be_named(mailpartner: FakeMailPartner) -> None:
    accounts = accounts_on(mailpartner, default=False)  # brand-c holds the default key's mails here
    preview = await accounts.preview(("301", "310"))
    assert preview.unplaced == ("301",) and preview.refs == ("brand-b:310",)
    await accounts.aclose()


async def test_a_slow_mailpartner_never_holds_the_prompt_past_its_wait(mailpartner: FakeMailPartner) -> None:
    mailpartner.fault("300", Fault(delay=5, endpoint="bulk-status"))
    accounts = accounts_on(mailpartner, wait=0.5, **{ONCALL: "default"})
    started = time.monotonic()
    preview = await accounts.preview(("300", "301"), ONCALL)
    assert time.monotonic() - started < 4.0  # well before the slow answer's 5 s
    assert preview.refs == ("default:300", "default:301")
    slow = preview.report("default:300")  # cut by its own timeout, or by the wait: either way unanswered
    assert slow is None or slow.report is Report.UNANSWERED
    assert preview.report("default:301").total == 860
    await accounts.aclose()


async def test_cancel_uses_the_key_of_the_mails_account(mailpartner: FakeMailPartner) -> None:
    accounts = accounts_on(mailpartner)
    outcome = await accounts.cancel("brand-b:301")
    assert outcome.cancelled and outcome.message_id == "brand-b:301"
    assert keys_used(mailpartner, "301") == [KEY_B]
    assert mailpartner.sandbox.mails(KEY_B)[0][0].cancelled and not mailpartner.sandbox.mails()[1][0].cancelled
    await accounts.aclose()


# -- through Slack ---------------------------------------------------------------------------------------


@pytest.fixture
def two(make_harness) -> Harness:
    return make_harness(**BRAND_B)


def test_the_prompt_names_the_account_and_the_confirm_uses_its_key(two: Harness, mailpartner, audit_lines) -> None:
    _, prompt = two.command("brand-b:301 -- wrong list")
    text = blocks_text(prompt)
    assert "mail `brand-b:301` at MailPartner" in text and "`brand-b:301`: 2,300 recipients" in text
    two.click(prompt)
    two.settle()
    assert keys_used(mailpartner, "301") == [KEY_B]
    outcome = next(line for line in audit_lines() if line["action"] == "outcome")
    assert outcome["mail_ids"] == ["brand-b:301"] and outcome["account"] == "brand-b"
    counted = two.bot.metrics.registry.get_sample_value(
        "cancel_mail_outcomes_total", {"result": "cancelled", "account": "brand-b"}
    )
    assert counted == 1
    assert (
        two.bot.metrics.registry.get_sample_value(
            "cancel_mail_outcomes_total", {"result": "cancelled", "account": "default"}
        )
        == 0
    )  # every account's series is there from the start
    history = two.run(two.bot.store.history(mail_id="brand-b:301")) or []
    assert {e.action for e in history} >= {"request", "confirm", "outcome"}


def test_an_unknown_account_gets_the_list_and_no_call(two: Harness, mailpartner) -> None:
    _, message = two.command("brand-x:301")
    assert "`brand-x` is not one of the bot's MailPartner accounts (`default`, `brand-b`)" in message["text"]
    assert "`brand-b:301`" in message["text"] and not buttons(message)
    two.settle()
    assert mailpartner.requests == [] and mailpartner.reports == []


def test_a_mention_routes_by_the_delivery_report(two: Harness, mailpartner) -> None:
    two.mention("<@U0BOT00000> cancel 310")
    two.settle()
    prompt, ts = two.thread_prompt()
    assert "`brand-b:310`: 415 recipients" in blocks_text(prompt)
    two.click(prompt, user=BOB, message_ts=ts)
    two.settle()
    assert keys_used(mailpartner, "310") == [KEY_B]


def test_a_mail_gone_out_has_no_confirm_and_a_missing_report_keeps_it(two: Harness, mailpartner) -> None:
    _, gone = two.command("304")
    assert "Nothing left to cancel: `default:304` has already gone out" in blocks_text(gone) and not buttons(gone)
    _, prompt = two.command("default:302")
    assert "`default:302`: MailPartner has no delivery report for it yet; normal for a mail not yet sent" in (
        blocks_text(prompt)
    )
    assert "cancel_mail_confirm" in buttons(prompt)


def test_a_workflow_step_names_the_account_in_its_outputs(two: Harness) -> None:
    from tests.test_workflows import Step

    step = Step(two, "brand-b:310").run()
    step.click()
    outputs = step.outputs()
    assert outputs["account"] == "brand-b" and outputs["cancelled_ids"] == "brand-b:310"


def test_no_address_reaches_a_public_message_or_a_log(two: Harness, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    two.mention("<@U0BOT00000> cancel 300 brand-b:301")  # a thread: everyone sees the prompt
    two.settle()
    prompt, ts = two.thread_prompt()
    _, private = two.command("300")  # the requester's own prompt may show three, masked
    two.click(prompt, user=BOB, message_ts=ts)
    two.settle()
    public = [c.payload for c in two.slack.calls if c.payload is not private]
    assert all("@example.fr" not in str(payload) for payload in public)
    assert "@example.fr" not in caplog.text
    masked = blocks_text(private)
    assert "To `a***@example.fr`, `b***@example.fr`, `c***@example.fr` and 1,237 more." in masked
    assert "anna0@" not in masked


# -- check ----------------------------------------------------------------------------------------------


def test_check_lists_every_account_with_its_credits() -> None:
    settings = Settings.from_env({"MAILPARTNER_SANDBOX": "true"}, console=True)
    texts = [f.text for f in check_mailpartner(settings)]
    assert any("accounts: default, brand-b" in t for t in texts)
    assert any("account `default`: the sandbox's key is @sandbox's, 5000 mail credits" in t for t in texts)
    assert any("account `brand-b`: the sandbox's key is @sandbox-brand-b's, 1200 mail credits" in t for t in texts)
    assert not any("MAILPARTNER_" in t and "_API_KEY" in t for t in texts)  # no setting holds a sandbox key


def test_check_asks_every_real_account_and_never_shows_a_key(mailpartner: FakeMailPartner) -> None:
    env = {
        "MAILPARTNER_API_KEY": API_KEY,
        "MAILPARTNER_BASE_URL": mailpartner.base_url,
        **BRAND_B,
        "MAILPARTNER_ACCOUNT_OLD_CLIENT_API_KEY": "revoked-key-0123456789",
    }
    findings = check_mailpartner(Settings.from_env(env, console=True))
    texts = "\n".join(f.text for f in findings)
    assert [f.ok for f in findings] == [True, True, False]
    assert "account `brand-b`: MAILPARTNER_ACCOUNT_BRAND_B_API_KEY is @sandbox-brand-b's, 1200 mail credits" in texts
    assert "account `old-client` refused MAILPARTNER_ACCOUNT_OLD_CLIENT_API_KEY (code 10)" in texts
    assert all(key not in texts for key in (API_KEY, KEY_B, "revoked-key"))


def test_a_reference_splits_into_account_and_id() -> None:
    assert split_ref("brand-b:301") == ("brand-b", "301") and split_ref("301") == ("", "301")


def test_the_account_settings_are_documented() -> None:
    from tests.fakes import ROOT

    readme, example = (ROOT / "README.md").read_text(), (ROOT / ".env.example").read_text()
    assert "`MAILPARTNER_ACCOUNT_<NAME>_API_KEY`" in readme and "MAILPARTNER_ACCOUNT_<NAME>_API_KEY" in example
    assert "# MAILPARTNER_ACCOUNT_BRAND_A_API_KEY=" in example  # an example, commented: no such account by default


def test_end_to_end_the_bot_process_cancels_with_the_key_of_the_account_that_knows_the_mail(
    mailpartner: FakeMailPartner, tmp_path: Path
) -> None:
    from bot.console.local_slack import LocalSlack
    from tests.fakes import BotProcess, bot_env, free_port
    from tests.test_e2e import Driver

    with LocalSlack() as slack:
        env = bot_env(free_port(), slack.api_url, mailpartner.base_url, DATABASE_URL=f"sqlite:///{tmp_path}/b.db")
        bot = BotProcess({**env, **BRAND_B}, tmp_path / "bot.log")
        try:
            bot.wait_healthy()
            driver = Driver(bot, slack)
            _, prompt = driver.command("310 -- wrong list")
            assert "`brand-b:310`: 415 recipients" in blocks_text(prompt)
            _, url = driver.click(prompt, user=BOB)
            assert "`brand-b:310` is cancelled" in blocks_text(driver.outcome_at(url))
            assert keys_used(mailpartner, "310") == [KEY_B]
            _, refused = driver.command("brand-x:310")
            assert "not one of the bot's MailPartner accounts" in refused["text"]
        finally:
            bot.stop()
        log = bot.log()
        assert KEY_B not in log and API_KEY not in log and "@example.fr" not in log and "Traceback" not in log
