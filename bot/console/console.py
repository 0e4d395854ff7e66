"""The local console: the bot's real Slack listeners, played in a terminal with no Slack account.

Each line a person types becomes the signed request Slack would send, dispatched to the real Bolt app;
whatever the app sends back (Web API calls, `response_url` posts) lands on a `LocalSlack` and is printed.
Reads a terminal or a pipe: `python -m bot console < demo.txt`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from slack_bolt.request.async_request import AsyncBoltRequest

from bot.app import build_bot
from bot.console.local_slack import BOT_USER_ID, LocalSlack, SlackCall
from bot.console.wire import (
    FORM,
    JSON,
    app_home_opened,
    app_mention,
    blocks_text,
    button_click,
    buttons,
    direct_message,
    function_executed,
    global_shortcut,
    message_shortcut,
    signed_headers,
    slash_command,
    view_submission,
)
from bot.inbound.forms import CONVERSATION_BLOCK, GLOBAL_SHORTCUT, IDS_BLOCK, MESSAGE_SHORTCUT, REASON_BLOCK
from bot.mailpartner.accounts import split_ref
from bot.mailpartner.sandbox import SANDBOX_ACCOUNTS, MailPartnerSandbox
from bot.requests.commands import split_reason
from bot.requests.ticket import PromptTicket
from bot.settings import Settings
from bot.words.terminal import terminal_text

USER = "U0CONSOLE1"
CHANNEL = "C0CONSOLE1"
DM = "D0CONSOLE1"  # your direct messages with the bot
CHANNEL_NAME = "on-call"  # what the banner, and every `<#C0CONSOLE1>` the bot writes, show
WORKFLOW_TOKEN = "xwfp-local-console"
WAIT = 60.0  # seconds to wait for a cancel to finish; MailPartner's own deadline is shorter

HELP = """Type what you would type in Slack:
  /cancel-mail <id> [<id> …] [-- reason]   ask to cancel scheduled mails (then: confirm or keep)
  confirm [<id>], keep [<id>]              press a button of the newest open prompt (or of the one for <id>)
  /cancel-mail <account>:<id>              a mail of one MailPartner account, as in brand-b:301
  /cancel-mail history [<id>]              what happened here, or to one mail (also: history [<id>])
  @bot cancel <id> [-- reason]             the same, as a mention in a thread
  form                                     the "Cancel a scheduled mail" shortcut: a form, filled here
  form on <message text>                   the "Cancel mails in message" shortcut on that message
  workflow <id> [<id> …] [-- reason]       a Workflow Builder run of the step; prints its outputs
  home                                     the app's Home tab, as Slack shows it to you
  dm <text>                                a direct message to the bot: dm cancel 300 -- why, dm history 300
  list                                     the sandbox's mails and their state
  as @bob, as @you                         play a second person (the two-person rule), then yourself again
  help, quit
Several prompts may be open at once, as in Slack. `python -m bot console --lang fr` plays a French speaker."""

# What a person types to press a prompt's button.
ANSWERS = {
    "confirm": "cancel_mail_confirm",
    "c": "cancel_mail_confirm",
    "yes": "cancel_mail_confirm",
    "keep": "cancel_mail_keep",
    "k": "cancel_mail_keep",
    "no": "cancel_mail_keep",
}


@dataclass
class _OpenPrompt:
    """A prompt whose buttons nobody pressed yet, and where it stands: what a click on it carries."""

    buttons: dict[str, Any]
    ids: tuple[str, ...]
    message_ts: str
    thread_ts: str
    channel: str
    function: dict[str, Any] | None = None
    after: Callable[[], None] | None = None  # what to show once it is answered (a workflow's outputs)

    def names(self, mail: str) -> bool:
        """`300` names `default:300`; `brand-b:301` only itself."""
        return any(ref == mail or split_ref(ref)[1] == mail for ref in self.ids)


def _relative(seconds: float) -> str:
    minutes = round(abs(seconds) / 60)
    span = f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d}"
    return f"in {span}" if seconds >= 0 else f"{span} ago"


def _line_editing(stdin: TextIO, stdout: TextIO) -> bool:
    """Whether the person types at a terminal with readline (not on every platform): then input() edits lines."""
    if not (stdin is sys.stdin and stdout is sys.stdout and stdin.isatty()):
        return False
    try:
        import readline  # noqa: F401  (importing it is what gives input() line editing)
    except ImportError:
        return False
    return True


class Console:
    def __init__(
        self,
        settings: Settings,
        stdin: TextIO,
        stdout: TextIO,
        *,
        echo: bool,
        database_url: str = "",
        locale: str = "",
    ) -> None:
        """`locale`: the Slack locale of the person played (`fr-FR`); none: the bot's language."""
        self._scratch = tempfile.TemporaryDirectory(prefix="cancel-mail-console-")
        self.stdin, self.stdout, self.echo = stdin, stdout, echo
        self.line_editing = _line_editing(stdin, stdout)
        self.slack = LocalSlack().start()
        if locale:
            self.slack.locales[USER] = locale
        self.secret = secrets.token_hex(16)
        self.real_api = bool(settings.mailpartner_accounts) and not settings.mailpartner_sandbox
        self.user = USER  # the person played now: `as @name` plays another (a second person)
        self.people = {USER: "you"}  # user id → the name the console shows for it
        self.accounts, self.base_url = tuple(settings.mailpartner_accounts), settings.mailpartner_base_url
        self.slack_credentials = bool(settings.slack_bot_token or settings.slack_app_token)
        console_settings = dataclasses.replace(
            settings,
            slack_bot_token="xoxb-local-console",
            slack_signing_secret=self.secret,
            slack_app_token="",
            slack_api_url=self.slack.api_url,
            # The server's rules, but where the console is: its one channel, and no user group (Slack's to say).
            allowed_channels=frozenset(),
            allowed_usergroups=frozenset(),
            audit_channel="",
            mailpartner_sandbox=not self.real_api,
            # A play session keeps its history in a temporary file unless DATABASE_URL names a store.
            database_url=database_url or f"sqlite:///{self._scratch.name}/console.db",
        )
        self.sandbox = None if self.real_api else MailPartnerSandbox.with_accounts()
        self.rules_line = self.rules(settings)
        self.bot = build_bot(console_settings, sandbox=self.sandbox)
        if locale:  # known before the first command, so its first answer is in that language too
            self.bot.loop.run(self.bot.languages.lookup(USER))
        self._seen = 0
        self._ts = 0
        self._dm_urls: set[str] = set()  # response_urls of clicks in your direct messages
        self._open: list[_OpenPrompt] = []  # the prompts not answered yet, oldest first

    def run(self) -> int:
        self.say(f"cancel-mail console: you are @you in #{CHANNEL_NAME}. Type `help` for commands, `quit` to leave.")
        if self.slack_credentials:
            self.say("(Slack credentials are set, but this console plays Slack: nothing reaches your workspace.)")
        else:
            self.say("(No Slack credentials: this console plays Slack. To connect a real Slack app, see README.)")
        if self.rules_line:
            self.say(self.rules_line)
        if self.real_api:
            accounts = ", ".join(sorted(self.accounts))
            self.say(f"⚠️  REAL MailPartner at {self.base_url}, account(s) {accounts}: this console cancels REAL mails.")
        else:
            self.say("🧪 MailPartner SANDBOX: no real mail is affected.")
            self.list_mails()
        try:
            while (line := self.read("confirm or keep? " if self._open else "> ")) is not None:
                if line in ("quit", "exit"):
                    break
                self.handle(line)
        except KeyboardInterrupt:  # Ctrl-C leaves like `quit`, without a traceback
            self.say("")
        finally:
            self.bot.shutdown(WAIT)
            self.slack.stop()
            self._scratch.cleanup()
        return 0

    def handle(self, line: str) -> None:
        if not line or line.startswith("#"):
            return
        word, _, mail = line.partition(" ")
        if word.lower() in ANSWERS:
            self.answer(ANSWERS[word.lower()], mail.strip())
        elif line in ("help", "?"):
            self.say(HELP)
        elif line.startswith("as "):
            self.play(line.removeprefix("as ").strip())
        elif line in ("list", "mails"):
            self.list_mails()
        elif line.startswith("/"):
            self.slash(line)
        elif line == "history" or line.startswith("history "):  # as typed without the command
            self.slash(f"/cancel-mail {line}")
        elif line.startswith("@"):
            self.mention(line)
        elif line == "form" or line.startswith("form on "):
            self.form(line.removeprefix("form").removeprefix(" on ").strip())
        elif line == "workflow" or line.startswith("workflow "):
            self.workflow(line.removeprefix("workflow"))
        elif line == "home":
            self.home()
        elif line == "dm" or line.startswith("dm "):
            self.direct_message(line.removeprefix("dm").strip())
        else:
            self.say("Not a command. Type `help`.")

    def play(self, who: str) -> None:
        """Act as another person from now on (`as @bob`, or a user id as `as U012ABCDEF`); `as @you` is back."""
        name = who.removeprefix("@").strip()
        if re.fullmatch(r"[UW][A-Z0-9]{8,}", name):  # a user id, as CANCEL_MAIL_ALLOWED_USERS names people
            user = name
            self.people.setdefault(user, user)
        elif re.fullmatch(r"[a-z0-9._-]{1,32}", name.lower()):
            name = name.lower()
            user = next((i for i, known in self.people.items() if known == name), f"U0CONSOLE{len(self.people) + 1}")
            self.people.setdefault(user, name)
        else:
            self.say("Write `as @name` (a second person) or `as U012ABCDEF` (a user id); `as @you` to come back.")
            return
        self.user = user
        self.say(f"You are now @{self.people[user]}.")

    def rules(self, settings: Settings) -> str:
        """The rules from the settings that this console applies, as the server does."""
        rules = []
        if settings.require_second_person:
            rules.append("two-person rule (`as @bob` plays a second person)")
        if settings.require_reason:
            rules.append("a reason is required")
        if settings.allowed_users:
            rules.append(f"allowed users {', '.join(sorted(settings.allowed_users))} (`as <id>` plays one)")
        return "Rules from your settings: " + "; ".join(rules) + "." if rules else ""

    def list_mails(self) -> None:
        if self.sandbox is None:
            self.say("(the real MailPartner API has no listing: use the ids you know)")
            return
        self.say("Sandbox mails (account:id, send time, state, subject):")
        for account, (key, _) in SANDBOX_ACCOUNTS.items():
            for mail, state in self.sandbox.mails(key):
                ref = f"{account}:{mail.message_id}"
                self.say(f"  {ref:<14} {_relative(mail.send_in):<14} {state.value:<24} {mail.subject}")

    # -- Slack, played -----------------------------------------------------------------------------

    def slash(self, line: str) -> None:
        command, _, text = line.partition(" ")
        body = slash_command(
            text, user=self.user, channel=CHANNEL, response_url=self.slack.new_response_url(), command=command
        )
        response = self.dispatch(body, FORM)
        if response.status == 404:
            self.say(f"Slack: {command} is not a command of this app. Try /cancel-mail.")
            return
        if not response.body:  # acked empty: the answer comes through the response_url
            self.settle()
            return
        try:
            message: dict[str, Any] = json.loads(response.body)
        except json.JSONDecodeError:  # Bolt answers a text-only ack as plain text
            message = {"text": response.body}
        self.show("channel sees" if message.get("response_type") == "in_channel" else "only you see", message)
        # "Looking up…" first; the prompt takes its place once MailPartner said what the mails are.
        answers = [c.payload for c in self.settle() if c.is_response_url and buttons(c.payload)]
        prompt = answers[-1] if answers else message
        if buttons(prompt):
            self.offer(prompt, message_ts="", thread_ts="")

    def mention(self, line: str) -> None:
        self._ts += 1
        ts = f"{int(time.time())}.{self._ts:06d}"
        text = re.sub(r"^@\S+", f"<@{BOT_USER_ID}>", line)
        self.dispatch(app_mention(text, user=self.user, channel=CHANNEL, ts=ts), JSON)
        for call in self.settle():
            if call.method == "chat.postMessage" and buttons(call.payload):
                self.offer(call.payload, message_ts=self._ts_of(call), thread_ts=ts)
                return

    def home(self) -> None:
        """Open the app's Home tab: the view the bot publishes for you, as it reads once every part answered."""
        self.dispatch(app_home_opened(user=self.user, channel=DM), JSON)
        published = [c for c in self.settle() if c.method == "views.publish"]
        if not published:
            self.say("Slack: the Home tab is empty (the bot published nothing).")
            return
        self.show("home", published[-1].response["view"])

    def direct_message(self, text: str) -> None:
        """Write to the bot in its Messages tab; a prompt there is answered as a click would."""
        self._ts += 1
        ts = f"{int(time.time())}.{self._ts:06d}"
        self.say(f"[you write to the bot] {text}")
        self.dispatch(direct_message(text, user=self.user, channel=DM, ts=ts), JSON)
        for call in self.settle():
            if call.method == "chat.postMessage" and call.payload.get("channel") == DM and buttons(call.payload):
                self.offer(call.payload, message_ts=self._ts_of(call), thread_ts="", channel=DM)
                return

    def form(self, message_text: str) -> None:
        """A shortcut: the form opens, the person fills its fields at the prompt, errors show per field."""
        if message_text:
            self._ts += 1
            message = {"text": message_text, "ts": f"{int(time.time())}.{self._ts:06d}"}
            self.say(f"[channel sees] {message_text}")
            body = message_shortcut(
                MESSAGE_SHORTCUT, message, user=self.user, channel=CHANNEL, response_url=self.slack.new_response_url()
            )
        else:
            body = global_shortcut(GLOBAL_SHORTCUT, user=self.user)
        self.dispatch(body, FORM)
        opened = [c for c in self.settle() if c.method == "views.open"]
        if not opened:
            self.say("Slack: the form did not open.")
            return
        view = opened[-1].response["view"]
        fields = {b.get("block_id"): b for b in view["blocks"] if b.get("type") == "input"}
        self.say(f"[form] {view['title']['text']}")
        ids = fields[IDS_BLOCK]["element"].get("initial_value", "")
        reason = ""
        while True:
            ids = self.ask(fields[IDS_BLOCK], ids)
            reason = self.ask(fields[REASON_BLOCK], reason)
            if ids is None or reason is None:
                return
            values: dict[str, dict[str, Any]] = {IDS_BLOCK: {"value": ids}, REASON_BLOCK: {"value": reason}}
            urls = []
            if CONVERSATION_BLOCK in fields:  # the select defaults to the current conversation
                values[CONVERSATION_BLOCK] = {"type": "conversations_select", "selected_conversation": CHANNEL}
                urls = [
                    {
                        "block_id": CONVERSATION_BLOCK,
                        "channel_id": CHANNEL,
                        "response_url": self.slack.new_response_url(),
                    }
                ]
            response = self.dispatch(view_submission(view, values, user=self.user, response_urls=urls), FORM)
            answer = json.loads(response.body) if response.body else {}
            if answer.get("response_action") != "errors":
                break
            for block, error in answer["errors"].items():
                self.say(f"[form] {fields[block]['label']['text']}: {terminal_text(error)}")
        for call in self.settle():
            if buttons(call.payload):
                thread = message["ts"] if message_text else ""
                self.offer(call.payload, message_ts=self._ts_of(call) if thread else "", thread_ts=thread)
                return

    def ask(self, field: dict[str, Any], current: str) -> str | None:
        label = field["label"]["text"] + ("" if field.get("optional") else " (required)")
        answer = self.read(f"{label}{f' [{current}]' if current else ''}: ")
        return None if answer is None else answer or current

    def workflow(self, text: str) -> None:
        """A workflow run reaching the step: its prompt, the person's choice, then the outputs it ends with."""
        ids_text, reason = split_reason(text)
        self._ts += 1
        execution = f"Fx0CONSOLE{self._ts:04d}"
        inputs = {"mail_ids": ids_text.strip(), "reason": reason, "requester": self.user, "channel": CHANNEL}
        body = function_executed(inputs, execution_id=execution, bot_access_token=WORKFLOW_TOKEN)
        self.dispatch(body, JSON)
        for call in self.settle():
            if call.method == "chat.postMessage" and buttons(call.payload):
                function = {"execution_id": execution, "inputs": inputs, "bot_access_token": WORKFLOW_TOKEN}
                ended = functools.partial(self._step_ended, execution)  # shown once the prompt is answered
                self.offer(call.payload, message_ts=self._ts_of(call), thread_ts="", function=function, after=ended)
                return
        self._step_ended(execution)

    def _step_ended(self, execution: str) -> None:
        """How the run ended: the outputs it completed with, its error, or that it still waits."""
        ends = [c for c in self.slack.calls if c.method.startswith("functions.complete")]
        ends = [c for c in ends if c.payload.get("function_execution_id") == execution]
        if not ends:
            self.say("[workflow] the step is still waiting")
            return
        if ends[-1].method == "functions.completeError":
            self.say(f"[workflow step failed] {terminal_text(ends[-1].payload.get('error', ''))}")
            return
        outputs = ends[-1].payload.get("outputs") or {}
        self.say("[workflow step ended with]")
        for name, value in outputs.items():
            shown = terminal_text(str(value), people=self.people).replace("\n", "\n" + " " * 22)
            self.say(f"  {name:<18}  {shown}")

    def offer(
        self,
        prompt: dict[str, Any],
        *,
        message_ts: str,
        thread_ts: str,
        function: dict[str, Any] | None = None,
        channel: str = CHANNEL,
        after: Callable[[], None] | None = None,
    ) -> None:
        """A prompt is open: `confirm` or `keep` answers the newest; other commands go on meanwhile."""
        options = buttons(prompt)
        try:
            ids = PromptTicket.decode(options["cancel_mail_confirm"]["value"]).ids
        except (KeyError, ValueError):
            ids = ()
        self._open.append(_OpenPrompt(options, ids, message_ts, thread_ts, channel, function, after))

    def answer(self, action: str, mail: str) -> None:
        """Press `action` on the newest open prompt, or on the newest one for `mail`."""
        chosen = next((p for p in reversed(self._open) if not mail or p.names(mail)), None)
        if chosen is None:
            open_ids = ", ".join(f"`{ref}`" for p in self._open for ref in p.ids)
            self.say(f"No open prompt for `{mail}`; open: {open_ids}." if mail and open_ids else "No prompt is open.")
            return
        self._open.remove(chosen)
        response_url = self.slack.new_response_url()
        if chosen.channel == DM:
            self._dm_urls.add(response_url)
        body = button_click(
            chosen.buttons[action],
            user=self.user,
            channel=chosen.channel,
            response_url=response_url,
            message_ts=chosen.message_ts,
            thread_ts=chosen.thread_ts,
            function=chosen.function,
        )
        self.dispatch(body, FORM)
        if not any(self._where(call) == "prompt now reads" for call in self.settle()):
            self._open.append(chosen)  # refused (not allowed, their own request): the buttons stay, as in Slack
            return
        if chosen.after is not None:
            chosen.after()

    def dispatch(self, body: str, content_type: str) -> Any:
        headers = signed_headers(self.secret, body, content_type=content_type)
        return self.bot.loop.run(self.bot.app.async_dispatch(AsyncBoltRequest(body=body, headers=headers)))

    def settle(self) -> list[SlackCall]:
        """Wait for the bot's background work, print what it sent to Slack, return those calls."""
        self.bot.service.wait_idle(WAIT)
        calls = self.slack.calls[self._seen :]
        self._seen += len(calls)
        # Slack shows the prompt's new text in place and the outcome as a new message; the outbox may deliver
        # the outcome first (it is the urgent one). A terminal reads top-down: the click's effect comes first.
        shown = sorted(((self._where(c), c) for c in calls), key=lambda pair: pair[0] != "prompt now reads")
        for where, call in shown:
            if where:
                self.show(where, call.payload)
        return calls

    @staticmethod
    def _ts_of(call: SlackCall) -> str:
        return str(call.response.get("ts", ""))

    def _where(self, call: SlackCall) -> str:
        payload = call.payload
        if call.is_response_url and self.slack.url + call.path in self._dm_urls and not payload.get("replace_original"):
            return "the bot writes to you"
        if call.is_response_url:
            if payload.get("replace_original") in (True, "true") and not buttons(payload):
                return "prompt now reads"
            return "channel sees" if payload.get("response_type") == "in_channel" else "only you see"
        if payload.get("channel") == DM and call.method == "chat.postMessage":
            return "the bot writes to you"
        return {
            "chat.postMessage": "thread sees" if payload.get("thread_ts") else "channel sees",
            "chat.update": "prompt now reads",
            "chat.postEphemeral": "only you see",
        }.get(call.method, "")

    # -- terminal ----------------------------------------------------------------------------------

    def show(self, where: str, message: dict[str, Any]) -> None:
        text = terminal_text(blocks_text(message), people=self.people, channels={CHANNEL: CHANNEL_NAME})
        lines = text.splitlines() or [""]
        self.say(f"[{where}] {lines[0]}")
        for extra in lines[1:]:
            self.say(" " * (len(where) + 3) + extra)

    def say(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)

    def read(self, prompt: str) -> str | None:
        if self.line_editing:  # input() reads through readline: arrows, history, Ctrl-R
            try:
                return input(prompt).strip()
            except EOFError:
                self.stdout.write("\n")
                return None
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            self.stdout.write("\n")
            return None
        line = line.strip()
        if self.echo:
            self.stdout.write(line + "\n")
        return line
