"""The local console driven through a pipe, and the break-glass `cancel` command's output and exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from bot.cli import EXIT_ALL_CANCELLED, EXIT_DECLINED, EXIT_NOT_CANCELLED, EXIT_UNKNOWN, EXIT_USAGE, main
from tests import fakes
from tests.fakes import API_KEY, BOT_VARIABLES, FakeMailPartner, Fault, outside_env


def clean_env(**extra: str) -> dict[str, str]:
    return {**outside_env(), **extra}


def run_bot(args: list[str], stdin: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return fakes.run_bot(args, cwd, stdin, **env)


DEMO = """\
/cancel-mail 300
confirm
/cancel-mail 303
confirm
/cancel-mail 304
/cancel-mail brand-b:301
confirm
/cancel-mail 999
confirm
/cancel-mail 301
keep
@bot cancel 302
confirm
/cancel-mail 300
/cancel-mail no!
list
quit
"""


def test_console_with_no_accounts_plays_every_outcome(tmp_path: Path) -> None:
    result = run_bot(["console"], DEMO, tmp_path)  # no Slack, no MailPartner key: the sandbox
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "MailPartner SANDBOX" in out and "Flash sale ends tonight" in out
    # The sandbox has two accounts, so every mail is named with its own: `default:300`, `brand-b:301`.
    assert "`default:300`: 1,240 recipients; nothing delivered yet." in out
    assert "✅ Mail `default:300` is cancelled" in out
    assert "⏰ Too late: mail `default:303`" in out
    assert "📤 Nothing left to cancel: `default:304` has already gone out to every recipient." in out
    assert "`brand-b:301`: 2,300 recipients" in out and "✅ Mail `brand-b:301` is cancelled" in out
    assert "❔ Mail `default:999` was not found" in out
    assert "👌 @you kept `default:301`; nothing was cancelled." in out
    assert "[thread sees]" in out and "✅ Mail `default:302` is cancelled" in out
    assert "🚫 Nothing left to cancel: `default:300` is already cancelled" in out  # no button, no call
    assert "`no!` is not a valid mail id" in out
    assert out.count("[SANDBOX]") == 0 and out.count("SANDBOX") >= 9  # every outcome and note is marked
    assert "Traceback" not in result.stderr


def test_console_reads_a_file(tmp_path: Path) -> None:
    demo = tmp_path / "demo.txt"
    demo.write_text("/cancel-mail 302\nkeep\n")
    result = run_bot(["console", str(demo)], "", tmp_path)
    assert result.returncode == 0 and "kept `default:302`" in result.stdout


def test_console_applies_the_servers_rules_and_plays_a_second_person(tmp_path: Path) -> None:
    script = "/cancel-mail 300\n/cancel-mail 300 -- wrong list\nconfirm\nas @bob\nconfirm\nas @you\nquit\n"
    rules = {"MAILPARTNER_SANDBOX": "true", "CANCEL_MAIL_REQUIRE_SECOND_PERSON": "true"}
    result = run_bot(["console"], script, tmp_path, **rules, CANCEL_MAIL_REQUIRE_REASON="true")
    out = result.stdout
    assert result.returncode == 0 and "Rules from your settings: two-person rule" in out and "reason is required" in out
    assert "Say why: a reason is required" in out  # the first request, with no reason
    assert "A second person must confirm your own request" in out  # @you confirming their own: refused
    assert "You are now @bob." in out and "@bob confirmed cancelling `default:300`" in out
    assert "Confirmed by @bob, requested by @you" in out and "`default:300` is cancelled" in out
    outsider = run_bot(
        ["console"],
        "/cancel-mail 301\nas U0ALLOWED1\n/cancel-mail 301\nquit\n",
        tmp_path,
        MAILPARTNER_SANDBOX="true",
        CANCEL_MAIL_ALLOWED_USERS="U0ALLOWED1",
    )
    assert "allowed users U0ALLOWED1" in outsider.stdout
    first, _, second = outsider.stdout.partition("You are now @U0ALLOWED1.")
    assert "not allowed" in first and "Cancel scheduled mail `default:301`" in second


def test_console_talks_to_a_real_account_only_when_asked_and_says_so(tmp_path: Path) -> None:
    fake = FakeMailPartner().start()
    real = {"MAILPARTNER_API_KEY": API_KEY, "MAILPARTNER_BASE_URL": fake.base_url}
    try:
        refused = run_bot(["console"], "/cancel-mail 300\nconfirm\n", tmp_path, **real)
        assert refused.returncode == 2 and fake.requests == [] and fake.reports == []
        assert "would cancel REAL mails" in refused.stderr and "console --real" in refused.stderr
        result = run_bot(["console", "--real"], "/cancel-mail 300\nconfirm\n", tmp_path, **real)
        slack = run_bot(["console", "--real"], "quit\n", tmp_path, **real, SLACK_BOT_TOKEN="xoxb-1-set")
    finally:
        fake.stop()
    assert f"REAL MailPartner at {fake.base_url}, account(s) default" in result.stdout
    assert "SANDBOX" not in result.stdout and "No Slack credentials" in result.stdout
    assert fake.cancels["300"] == 1 and API_KEY not in result.stdout + result.stderr
    assert "Slack credentials are set, but this console plays Slack" in slack.stdout


# -- break-glass CLI -----------------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeMailPartner:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(BOT_VARIABLES):
            monkeypatch.delenv(name)
    fake = FakeMailPartner().start()
    monkeypatch.setenv("MAILPARTNER_API_KEY", API_KEY)
    monkeypatch.setenv("MAILPARTNER_BASE_URL", fake.base_url)
    monkeypatch.setenv("MAILPARTNER_TIMEOUT", "0.5")
    monkeypatch.setenv("MAILPARTNER_DEADLINE", "1")
    yield fake
    fake.stop()


def test_cli_all_cancelled(cli_env: FakeMailPartner, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cancel", "300", "302", "--yes"]) == EXIT_ALL_CANCELLED
    out = capsys.readouterr().out
    assert "✅ Mail `300` is cancelled" in out and "✅ Mail `302` is cancelled" in out and "`code 200`" in out
    assert cli_env.cancels == {"300": 1, "302": 1}


def test_cli_not_cancelled(cli_env: FakeMailPartner, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cancel", "300", "303", "-y"]) == EXIT_NOT_CANCELLED
    assert "Too late" in capsys.readouterr().out


def test_cli_unknown_outcome(cli_env: FakeMailPartner, capsys: pytest.CaptureFixture[str]) -> None:
    cli_env.fault("300", Fault(hang=True, times=9))
    assert main(["cancel", "300", "303", "--yes"]) == EXIT_UNKNOWN
    assert "did not answer in time" in capsys.readouterr().out


def test_cli_json(cli_env: FakeMailPartner, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cancel", "300", "999", "--yes", "--json"]) == EXIT_NOT_CANCELLED
    document = json.loads(capsys.readouterr().out)
    assert document["sandbox"] is False
    first, second = document["outcomes"]
    assert (first["message_id"], first["cancelled"], first["code"]) == ("300", True, 200)
    assert (second["message_id"], second["cancelled"], second["code"]) == ("999", False, 4)
    assert "not found" in second["text"]


def test_cli_asks_and_declined_sends_nothing(cli_env: FakeMailPartner, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("n\n"))
    assert main(["cancel", "300"]) == EXIT_DECLINED
    assert cli_env.requests == [] and "Nothing was cancelled" in capsys.readouterr().err


def test_cli_asks_and_yes_proceeds(cli_env: FakeMailPartner, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("yes\n"))
    assert main(["cancel", "300"]) == EXIT_ALL_CANCELLED
    said = capsys.readouterr().err
    assert "Cancel mail 300 at MailPartner (" in said  # as a person writes it
    assert said.index("`300`: 1,240 recipients; nothing delivered yet.") < said.index("Cancel mail 300")  # as Slack
    assert main(["cancel", "304", "--yes"]) == EXIT_NOT_CANCELLED
    assert "`304` has gone out" in capsys.readouterr().err  # --yes skips the question, not what MailPartner said
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("no\n"))
    assert main(["cancel", "301", "302", "--reason", "wrong list"]) == EXIT_DECLINED
    assert "Cancel 2 mails, 301, 302, at MailPartner (" in capsys.readouterr().err


def test_cli_bad_id(cli_env: FakeMailPartner, capsys) -> None:
    assert main(["cancel", "30 0;", "--yes"]) == EXIT_USAGE
    assert cli_env.requests == [] and "cancel: 0; is not a valid mail id." in capsys.readouterr().err
    assert main(["cancel", "302", "wrong", "list", "--yes"]) == EXIT_USAGE
    said = capsys.readouterr().err
    assert "wrong list does not look like mail ids" in said and 'cancel 302 --reason "wrong list"' in said
    assert main(["cancel", "a" * 65, "--yes"]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (
        f"cancel: {'a' * 24}… is too long for a mail id: a mail id is 64 characters at most, its account name included."
    )
    assert cli_env.requests == []


def test_cli_needs_a_key_or_sandbox(cli_env: FakeMailPartner, monkeypatch, capsys) -> None:
    monkeypatch.delenv("MAILPARTNER_API_KEY")
    assert main(["cancel", "300", "--yes"]) == EXIT_USAGE
    assert "MAILPARTNER_API_KEY" in capsys.readouterr().err


def test_cli_on_the_sandbox(tmp_path: Path) -> None:
    result = run_bot(["cancel", "300", "--yes"], "", tmp_path, MAILPARTNER_SANDBOX="true")
    assert result.returncode == EXIT_ALL_CANCELLED and result.stdout.startswith("[SANDBOX] ✅")
    result = run_bot(["cancel", "304", "--yes"], "", tmp_path, MAILPARTNER_SANDBOX="true", BOT_LANGUAGE="fr")
    assert result.returncode == EXIT_NOT_CANCELLED and "déjà parti" in result.stdout


def test_help_lists_every_mode(tmp_path: Path) -> None:
    result = run_bot(["--help"], "", tmp_path)
    assert result.returncode == 0
    for word in ("console", "cancel", "Socket Mode", "HTTP mode"):
        assert word in result.stdout


# -- check ---------------------------------------------------------------------------------------------


def check_env(slack_url: str, mailpartner_url: str, **extra: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-check-0123456789",
        "SLACK_SIGNING_SECRET": "secret-0123456789",
        "SLACK_API_URL": slack_url,
        "MAILPARTNER_API_KEY": API_KEY,
        "MAILPARTNER_BASE_URL": mailpartner_url,
        "MAILPARTNER_TIMEOUT": "1",
        "MAILPARTNER_DEADLINE": "1",
        **extra,
    }


def test_check_all_ready(tmp_path: Path) -> None:
    from bot.console.local_slack import LocalSlack

    fake = FakeMailPartner().start()
    try:
        with LocalSlack() as slack:
            result = run_bot(["check"], "", tmp_path, **check_env(slack.api_url, fake.base_url))
    finally:
        fake.stop()
    assert result.returncode == 0, result.stdout
    assert "✅ Slack: signed in as @cancel-mail" in result.stdout
    # `me` tells whose key it is and what it has left; no mail id is sent anywhere.
    assert "✅ MailPartner: MAILPARTNER_API_KEY is @sandbox's, 5000 mail credits, balance 125.50 EUR" in result.stdout
    assert fake.requests == [] and fake.reports == [] and not fake.cancels


def test_check_finds_wrong_key_and_missing_scope(tmp_path: Path) -> None:
    from bot.console.local_slack import LocalSlack

    fake = FakeMailPartner(api_key="the-real-key-0123456789").start()
    try:
        with LocalSlack() as slack:
            slack.scopes = "commands,chat:write"
            result = run_bot(["check"], "", tmp_path, **check_env(slack.api_url, fake.base_url))
    finally:
        fake.stop()
    assert result.returncode == 1
    assert "❌ Slack token lacks scope(s) app_mentions:read" in result.stdout
    assert "❌ MailPartner refused MAILPARTNER_API_KEY (code 10)" in result.stdout
    assert API_KEY not in result.stdout + result.stderr


def test_sign_in_tells_a_refused_token_from_a_slack_that_is_down() -> None:
    # A refused token stops the start; a Slack that is down does not (run_slack starts anyway).
    from bot.app import SlackSignInError, sign_in
    from bot.console.local_slack import LocalSlack
    from bot.settings import Settings

    with LocalSlack() as slack:
        env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "MAILPARTNER_API_KEY": "k"}
        settings = Settings.from_env({**env, "SLACK_API_URL": slack.api_url})
        slack.fail("auth.test", error="invalid_auth")
        with pytest.raises(SlackSignInError) as refused:
            asyncio.run(sign_in(settings))
        assert not refused.value.unreachable and "invalid_auth" in str(refused.value)
        slack.outage(30, "503")
        with pytest.raises(SlackSignInError) as down:
            asyncio.run(sign_in(settings))
        assert down.value.unreachable and "HTTP 503" in str(down.value)


def test_check_unreachable(tmp_path: Path) -> None:
    result = run_bot(["check"], "", tmp_path, **check_env("http://127.0.0.1:9/api/", "http://127.0.0.1:9/v1"))
    assert result.returncode == 1 and "Slack is unreachable" in result.stdout
    assert "❌ MailPartner at http://127.0.0.1:9/v1 could not be reached (connection)" in result.stdout
    assert "Traceback" not in result.stderr


def test_cli_reason_is_audited_and_in_json(cli_env: FakeMailPartner, capsys) -> None:
    assert main(["cancel", "300", "--yes", "--json", "--reason", "wrong segment <!channel>"]) == EXIT_ALL_CANCELLED
    captured = capsys.readouterr()
    assert json.loads(captured.out)["reason"] == "wrong segment <!channel>"
    audit = [json.loads(line[line.index("{") :]) for line in captured.err.splitlines() if '"action"' in line]
    assert [(a["action"], a["reason"]) for a in audit] == [
        ("request", "wrong segment <!channel>"),
        ("outcome", "wrong segment <!channel>"),
    ]
    assert all(a["actor"].startswith("cli:") for a in audit)


def test_cli_reason_required_or_too_long(cli_env: FakeMailPartner, monkeypatch, capsys) -> None:
    assert main(["cancel", "300", "--yes", "--reason", "x" * 501]) == EXIT_USAGE
    monkeypatch.setenv("CANCEL_MAIL_REQUIRE_REASON", "true")
    assert main(["cancel", "300", "--yes"]) == EXIT_USAGE
    assert "a reason is required here" in capsys.readouterr().err and cli_env.requests == []


def test_console_form_and_workflow(tmp_path: Path) -> None:
    script = (
        "form\nnope!\n\n300\nwrong segment\nconfirm\n"
        'form on Oops {"messageId": "302"} and `301`\n\nwhy\nkeep\n'
        "workflow 301 -- wrong list\nconfirm\n"
        "workflow bad!\nquit\n"
    )
    result = run_bot(["console"], script, tmp_path)
    out = result.stdout
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "[form] Mail ids: `nope!` is not a valid mail id." in out
    assert "*Reason:* wrong segment" in out and "✅ Mail `default:300` is cancelled" in out
    assert "Mail ids (required) [302 301]:" in out and "kept `default:302`, `default:301`" in out
    assert "result              cancelled" in out and "cancelled_ids       default:301" in out
    assert "account             default" in out
    assert "[workflow step failed] `bad!` is not a valid mail id." in out


def test_check_reports_the_store(tmp_path: Path) -> None:
    from bot.console.local_slack import LocalSlack

    fake = FakeMailPartner().start()
    try:
        with LocalSlack() as slack:
            env = check_env(slack.api_url, fake.base_url)
            # check reads the store and never creates or migrates it: start-up (here `migrate`) does.
            run_bot(["migrate"], "", tmp_path, **env, DATABASE_URL=f"sqlite:///{tmp_path}/bot.db")
            good = run_bot(["check"], "", tmp_path, **env, DATABASE_URL=f"sqlite:///{tmp_path}/bot.db")
            bad = run_bot(["check"], "", tmp_path, **env, DATABASE_URL="postgresql://bot:pw-0123456789@127.0.0.1:9/bot")
    finally:
        fake.stop()
    assert good.returncode == 0 and "✅ Store: sqlite:///" in good.stdout and "revision 0004" in good.stdout
    assert (
        bad.returncode == 1
        and "❌ Store: DATABASE_URL: cannot reach the store at postgresql://bot:***@127.0.0.1:9/bot" in bad.stdout
    )
    assert "pw-0123456789" not in bad.stdout + bad.stderr and "Traceback" not in bad.stderr


def test_check_prints_each_line_as_its_probe_ends_and_names_the_one_still_waiting(tmp_path: Path) -> None:
    """Slack's Web API accepts connections and never answers: the other lines come at once, a line says Slack
    is still awaited, and Slack's own line says it never answered; before, nothing showed for 20 s."""
    import io
    import socket

    from bot.ops.check import run_checks
    from bot.settings import Settings

    silent = socket.create_server(("127.0.0.1", 0))
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": "xoxb-1-check",
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_API_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/api/",
            "MAILPARTNER_SANDBOX": "true",
            "CANCEL_MAIL_STATE_DIR": str(tmp_path),
        }
    )
    out = io.StringIO()
    try:
        assert run_checks(settings, out, timeout=4.0, waiting_every=0.5) == 1
    finally:
        silent.close()
    lines = out.getvalue().splitlines()
    assert any(line.startswith("… still waiting for") and "Slack" in line for line in lines), lines
    mailpartner = next(i for i, line in enumerate(lines) if "MailPartner account `default`" in line)
    assert mailpartner < lines.index("❌ Checking Slack: no answer within 4 s"), lines
