"""A new user's and an operator's first runs from a fresh clone: the sandbox kept apart from the real store,
a server without its settings, a mistyped DATABASE_URL, the CLI at a terminal, and the usage that names
every command."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bot.cli import EXIT_ALL_CANCELLED, EXIT_DECLINED, EXIT_NOT_CANCELLED, EXIT_USAGE
from bot.mailpartner.sandbox import MailPartnerSandbox
from bot.requests.commands import UsageReason
from bot.settings import Settings, SettingsError
from bot.store.history import HistoryEvent
from bot.words.blocks import history_line, usage_text
from tests.fakes import ROOT, outside_env, run_bot

# -- the sandbox stays apart, and remembers ----------------------------------------------------------------


def test_a_sandbox_cancel_stays_out_of_the_real_history_and_is_remembered(tmp_path: Path) -> None:
    first = run_bot(["cancel", "300", "--yes"], tmp_path, MAILPARTNER_SANDBOX="true")
    assert first.returncode == EXIT_ALL_CANCELLED and "`code 200`" in first.stdout, first.stderr
    again = run_bot(["cancel", "300", "--yes"], tmp_path, MAILPARTNER_SANDBOX="true")
    assert again.returncode == EXIT_ALL_CANCELLED and "was already cancelled" in again.stdout
    assert "`code 5`" in again.stdout  # as the README promises: a second cancel answers code 5
    real = run_bot(["history", "300"], tmp_path)
    assert real.returncode == 0 and "default:300" not in real.stdout and "300" not in real.stdout
    sandboxed = run_bot(["history", "300"], tmp_path, MAILPARTNER_SANDBOX="true")
    lines = [line for line in sandboxed.stdout.splitlines() if "cancelled" in line]
    assert lines and all("SANDBOX" in line for line in lines), sandboxed.stdout


def test_sandbox_rows_in_a_shared_store_say_sandbox(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    assert run_bot(["cancel", "302", "--yes"], tmp_path, MAILPARTNER_SANDBOX="true", DATABASE_URL=url).returncode == 0
    shown = run_bot(["history", "302", "--json"], tmp_path, DATABASE_URL=url)
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert rows and all(row["sandbox"] is True for row in rows)
    text = run_bot(["history", "302"], tmp_path, DATABASE_URL=url).stdout
    assert text.count("SANDBOX") == len(rows)


def test_the_sandbox_state_file_is_shared_and_survives_damage(tmp_path: Path) -> None:
    state = tmp_path / "state" / "sandbox-mails.json"
    one, two = MailPartnerSandbox.with_accounts(state), MailPartnerSandbox.with_accounts(state)
    assert one.cancel("sandbox", "300") == 200
    assert two.cancel("sandbox", "300") == 5  # another process sees it
    assert two.cancel("sandbox-brand-b", "301") == 200 and one.cancel("sandbox", "301") == 200  # books apart
    state.write_text("{not json")
    fresh = MailPartnerSandbox.with_accounts(state)
    assert fresh.cancel("sandbox", "302") == 200  # a damaged file holds nothing, and is written anew
    assert json.loads(state.read_text())["cancelled"]["*"] == ["302"]
    assert MailPartnerSandbox().cancel("any", "300") == 200  # no file: memory only, as the console wants


# -- a server without its settings, and a mistyped DATABASE_URL ---------------------------------------------


def test_a_server_without_slack_settings_and_no_terminal_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_bot([], tmp_path)
    assert result.returncode == EXIT_USAGE and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "SLACK_BOT_TOKEN" in line and "python -m bot console" in line
    assert run_bot(["console"], tmp_path, stdin="quit\n").returncode == 0  # the console still takes a pipe


def at_a_terminal(
    args: list[str], cwd: Path, *, waits_for: bytes, answer: bytes | signal.Signals, **env: str
) -> tuple[int, str]:
    """Run `python -m bot ARGS` on a pseudo-terminal, as a person would: once `waits_for` shows, type
    `answer` (or press Ctrl-C: SIGINT); then read until the process ends. Its exit status and everything
    the screen showed."""
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "bot", *args]
    environment = {**outside_env(), "TERM": "dumb", **env}
    process = subprocess.Popen(
        command,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
        env=environment,
        # As a person's shell starts it: Ctrl-C's SIGINT not ignored, even where these tests run in the
        # background of a script (which ignores it, and Python then never turns it into KeyboardInterrupt).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + 60
    while waits_for not in screen and time.monotonic() < deadline:
        screen += os.read(leader, 4096)
    if isinstance(answer, signal.Signals):
        process.send_signal(answer)
    else:
        os.write(leader, answer)
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes with the process
            break
        if not chunk:
            break
        screen += chunk
    status = process.wait(30)
    os.close(leader)
    return status, screen.decode(errors="replace")


def test_ctrl_c_at_the_cli_question_is_a_no(tmp_path: Path) -> None:
    status, screen = at_a_terminal(
        ["cancel", "300"], tmp_path, waits_for=b"[y/N]", answer=signal.SIGINT, MAILPARTNER_SANDBOX="true"
    )
    assert status == EXIT_DECLINED and "Nothing was cancelled." in screen and "Traceback" not in screen
    history = run_bot(["history", "300", "--json"], tmp_path, MAILPARTNER_SANDBOX="true")
    assert [json.loads(line)["action"] for line in history.stdout.splitlines()] == ["keep", "request"]


def test_bare_bot_on_a_terminal_still_opens_the_console(tmp_path: Path) -> None:
    status, screen = at_a_terminal([], tmp_path, waits_for=b"> ", answer=b"quit\n")
    assert status == 0 and "cancel-mail console" in screen


def test_a_missing_folder_in_an_explicit_database_url_stops_the_bot(tmp_path: Path) -> None:
    typo = tmp_path / "data-typo" / "x.db"
    # Every mode, `check` included, lists it with the other settings' problems before anything starts.
    for args in (["history"], ["migrate"], ["check"], ["cancel", "300", "--yes"]):
        result = run_bot(args, tmp_path, MAILPARTNER_SANDBOX="true", DATABASE_URL=f"sqlite:///{typo}")
        assert result.returncode == EXIT_USAGE, result.stderr
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("  - ")]
        assert "DATABASE_URL" in line and "does not exist" in line
    assert not typo.parent.exists()
    # The default store's folder is still made on the first start.
    state = tmp_path / "fresh-state"
    assert run_bot(["migrate"], tmp_path, CANCEL_MAIL_STATE_DIR=str(state)).returncode == 0
    assert (state / "cancel-mail.db").exists()


def test_settings_say_which_store_is_the_default_one() -> None:
    base = {"MAILPARTNER_API_KEY": "k", "CANCEL_MAIL_STATE_DIR": "/var/lib/cm"}
    assert Settings.from_env(base, console=True).default_store
    assert Settings.from_env(base, console=True).database_url == "sqlite:////var/lib/cm/cancel-mail.db"
    sandbox = Settings.from_env({**base, "MAILPARTNER_SANDBOX": "true"}, console=True)
    assert sandbox.database_url == "sqlite:////var/lib/cm/cancel-mail-sandbox.db"
    assert sandbox.sandbox_state == Path("/var/lib/cm/sandbox-mails.json")
    assert not Settings.from_env({**base, "DATABASE_URL": "sqlite:////tmp/x.db"}, console=True).default_store


def test_http_mode_without_a_signing_secret_names_socket_mode_too() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "MAILPARTNER_API_KEY": "k"})
    (problem,) = raised.value.problems
    assert "SLACK_SIGNING_SECRET" in problem and "SLACK_APP_TOKEN" in problem and "Socket Mode" in problem


# -- the break-glass CLI at a terminal ---------------------------------------------------------------------


def test_the_cli_at_a_terminal_keeps_audit_lines_off_the_screen_and_prints_totals(tmp_path: Path) -> None:
    args = ["cancel", "303", "304", "999", "brand-b:310", "--reason", "wrong list"]
    status, text = at_a_terminal(args, tmp_path, waits_for=b"[y/N]", answer=b"y\n", MAILPARTNER_SANDBOX="true")
    assert status == EXIT_NOT_CANCELLED
    assert '"action"' not in text, text  # no JSON audit line on the person's screen
    # Text for a terminal: no Slack markup.
    assert "Totals: 1 cancelled · 1 too late · 1 already sent · 1 not found · 0 failed" in text, text
    assert "*" not in text and "`" not in text and ":test_tube:" not in text, text
    # The audit trail still has every line, in the store.
    history = run_bot(["history", "--json"], tmp_path, MAILPARTNER_SANDBOX="true")
    actions = [json.loads(line)["action"] for line in history.stdout.splitlines()]
    assert actions.count("outcome") == 4 and "request" in actions


def test_the_cli_audit_lines_go_to_a_redirected_log_or_with_verbose(tmp_path: Path) -> None:
    piped = run_bot(["cancel", "300", "--yes"], tmp_path, MAILPARTNER_SANDBOX="true")
    assert '"action": "outcome"' in piped.stderr  # standard error is no terminal: it is the log
    assert "Totals" not in piped.stdout  # one mail: its outcome is the summary


def test_cli_json_writes_no_reason_as_null(tmp_path: Path) -> None:
    result = run_bot(["cancel", "300", "--yes", "--json"], tmp_path, MAILPARTNER_SANDBOX="true")
    document = json.loads(result.stdout)
    assert document["reason"] is None and document["sandbox"] is True
    given = run_bot(["cancel", "302", "--yes", "--json", "--reason", "why"], tmp_path, MAILPARTNER_SANDBOX="true")
    assert json.loads(given.stdout)["reason"] == "why"


def test_check_on_the_sandbox_names_no_setting_it_does_not_read(tmp_path: Path) -> None:
    result = run_bot(["check"], tmp_path, MAILPARTNER_SANDBOX="true")
    assert "MAILPARTNER_API_KEY" not in result.stdout and "the sandbox's key is @sandbox's" in result.stdout


# -- the usage names history and ACCOUNT:ID everywhere --------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_usage_names_history_and_the_account_form(lang: str) -> None:
    text = usage_text(UsageReason.HELP, "", lang=lang)
    assert "/cancel-mail history" in text and "brand-b:301" in text


def test_the_manifest_and_the_readme_name_history_and_the_account_form() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    (command,) = manifest["features"]["slash_commands"]
    assert "history" in command["usage_hint"] and "ACCOUNT:" in command["usage_hint"]
    table = (ROOT / "README.md").read_text().split("## Using it in Slack", 1)[1].split("Rules the bot", 1)[0]
    assert "`/cancel-mail history 300`" in table and "`/cancel-mail brand-b:301`" in table


def test_the_console_takes_history_without_the_command(tmp_path: Path) -> None:
    result = run_bot(["console"], tmp_path, stdin="/cancel-mail 302\nkeep\nhistory 302\nhistory\nquit\n")
    assert "Not a command" not in result.stdout
    assert result.stdout.count("History of mail `302`") == 1 and "Cancel history in this conversation" in result.stdout


def test_history_lines_of_the_sandbox_are_marked_in_both_languages() -> None:
    event = HistoryEvent(1_800_000_000.0, "keep", "U0ALICE000", "C1", "", ("300",), detail={"sandbox": True})
    for lang, mark in (("en", "SANDBOX"), ("fr", "BAC À SABLE")):
        assert mark in history_line(event, lang, with_channel=False)
    real = HistoryEvent(1_800_000_000.0, "keep", "U0ALICE000", "C1", "", ("300",))
    assert "SANDBOX" not in history_line(real, "en", with_channel=False)


def test_every_message_the_sandbox_produces_is_marked(tmp_path: Path) -> None:
    result = run_bot(["console"], tmp_path, stdin="/cancel-mail 304\n/cancel-mail 300 304\nkeep\nquit\n")
    lines = result.stdout.splitlines()
    gone = next(i for i, line in enumerate(lines) if "Nothing left to cancel" in line)
    assert lines[gone - 1].startswith("[prompt now reads] 🧪 *SANDBOX*"), result.stdout


# -- numbers and dates as each language writes them ---------------------------------------------------------


def test_french_numbers_use_a_narrow_no_break_space(tmp_path: Path) -> None:
    result = run_bot(
        ["console"], tmp_path, stdin="/cancel-mail 300\nkeep\n/cancel-mail 300 301\nkeep\nquit\n", BOT_LANGUAGE="fr"
    )
    assert "1\u202f240 destinataires" in result.stdout and "1\u202f237" in result.stdout, result.stdout
    assert "2\u202f100 destinataires au total" in result.stdout or "2\u202f100" in result.stdout
    assert "1,240" not in result.stdout
    english = run_bot(["console"], tmp_path, stdin="/cancel-mail 300\nkeep\nquit\n")
    assert "1,240 recipients" in english.stdout


def test_history_dates_read_as_each_language_writes_them() -> None:
    event = HistoryEvent(1_795_795_500.0, "keep", "U0ALICE000", "C1", "", ("300",))
    assert history_line(event, "en", with_channel=False).startswith("• `Nov 27, 2026 16:05 UTC`")
    assert history_line(event, "fr", with_channel=False).startswith("• `27 nov. 2026 16:05 UTC`")
