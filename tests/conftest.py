from __future__ import annotations

import json
import logging
import os
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.app import build_bot
from bot.console.local_slack import LocalSlack
from bot.console.wire import FORM, JSON, app_mention, button_click, buttons, signed_headers, slash_command
from bot.outbound.outbox import Outbox
from bot.settings import Settings
from tests.databases import any_database, postgres  # noqa: F401  (fixtures)
from tests.fakes import API_KEY, BOT_TOKEN, SIGNING_SECRET, FakeMailPartner, answer_to, is_proxy_variable

ALICE, BOB, MALLORY = "U0ALICE000", "U0BOB00000", "U0MALLORY0"
ONCALL = "C0ONCALL00"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


T = TypeVar("T")


class Harness:
    """The real Bolt app, its Web API on a LocalSlack, MailPartner on a FakeMailPartner; driven by signed requests."""

    def __init__(
        self,
        slack: LocalSlack,
        mailpartner: FakeMailPartner,
        database_url: str,
        outbox: Outbox | None = None,
        **env: str,
    ) -> None:
        self.slack, self.mailpartner, self.clock = slack, mailpartner, Clock()
        self.settings = Settings.from_env(
            {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                "MAILPARTNER_API_KEY": API_KEY,
                "MAILPARTNER_BASE_URL": mailpartner.base_url,
                "MAILPARTNER_TIMEOUT": "2",
                "MAILPARTNER_DEADLINE": "4",
                "DATABASE_URL": database_url,
                # The test's own state folder (the autouse `state_home`): a sandbox's state never lands in ~.
                "XDG_STATE_HOME": os.environ.get("XDG_STATE_HOME", ""),
                **env,
            }
        )
        # The sweeper runs on demand (`sweep()`), on the harness's clock, so tests decide when time passes.
        self.bot = build_bot(self.settings, clock=self.clock, outbox=outbox, sweep=False)
        self._ts = 0

    def dispatch(self, body: str, content_type: str, **headers: str) -> BoltResponse:
        signed = signed_headers(SIGNING_SECRET, body, content_type=content_type)
        request = AsyncBoltRequest(body=body, headers={**signed, **headers})
        return self.bot.loop.run(self.bot.app.async_dispatch(request), timeout=30)

    def command(self, text: str, *, user: str = ALICE, channel: str = ONCALL) -> tuple[BoltResponse, dict[str, Any]]:
        """The command's ack, and what the person then sees: the ack itself, or the prompt that replaces
        its "looking up…" once MailPartner said what the mails are."""
        url = self.slack.new_response_url()
        response = self.dispatch(slash_command(text, user=user, channel=channel, response_url=url), FORM)
        try:
            message = json.loads(response.body) if response.body else {}
        except json.JSONDecodeError:
            message = {"text": response.body}
        return response, answer_to(self.slack, url, message)

    def click(
        self,
        prompt: dict[str, Any],
        action: str = "confirm",
        *,
        user: str = ALICE,
        channel: str = ONCALL,
        message_ts: str = "",
        thread_ts: str = "",
    ) -> BoltResponse:
        button = buttons(prompt)[f"cancel_mail_{action}"]
        body = button_click(
            button,
            user=user,
            channel=channel,
            response_url=self.slack.new_response_url(),
            message_ts=message_ts,
            thread_ts=thread_ts,
        )
        return self.dispatch(body, FORM)

    def mention(
        self,
        text: str,
        *,
        user: str = ALICE,
        channel: str = ONCALL,
        thread_ts: str = "",
        event_id: str = "",
        **headers: str,
    ) -> tuple[BoltResponse, str]:
        self._ts += 1
        ts = f"1800000000.{self._ts:06d}"
        body = app_mention(text, user=user, channel=channel, ts=ts, thread_ts=thread_ts, event_id=event_id)
        return self.dispatch(body, JSON, **headers), ts

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """`work` on the bot's loop (the store's calls, a sweep), from the test's thread."""
        return self.bot.loop.run(work, timeout=30)

    def settle(self, timeout: float = 15.0) -> None:
        assert self.bot.service.wait_idle(timeout), "the bot's background work did not finish"
        assert self.run(self.bot.store.flush(timeout)), "the history rows were not written"

    def thread_prompt(self) -> tuple[dict[str, Any], str]:
        """The last prompt the bot posted with chat.postMessage, and its ts."""
        posted = [c for c in self.slack.of("chat.postMessage") if buttons(c.payload)]
        assert posted, "no prompt was posted"
        return posted[-1].payload, str(posted[-1].response["ts"])


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (`pytest.mark.anyio`) run on asyncio, the bot's loop."""
    return "asyncio"


@pytest.fixture(autouse=True)
def no_proxy_of_the_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot reads the proxies the environment names: a test's own fakes are reached directly."""
    for name in [n for n in os.environ if is_proxy_variable(n)]:
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every bot a test starts keeps its default store under the test's own folder, never in the home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    return tmp_path / "xdg-state"


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    with LocalSlack() as fake:
        yield fake


@pytest.fixture
def mailpartner() -> Iterator[FakeMailPartner]:
    fake = FakeMailPartner().start()
    yield fake
    fake.stop()


@pytest.fixture
def make_harness(slack: LocalSlack, mailpartner: FakeMailPartner, tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(database_url: str = "", outbox: Outbox | None = None, **env: str) -> Harness:
        """A bot on its own SQLite file, or on `database_url` (several harnesses sharing one are replicas);
        `outbox`: one with a shorter backoff or deadline."""
        url = database_url or f"sqlite:///{tmp_path}/bot-{len(made)}.db"
        harness = Harness(slack, mailpartner, url, outbox, **env)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.bot.shutdown(5)


@pytest.fixture
def harness(make_harness: Any) -> Harness:
    return make_harness()


@pytest.fixture
def audit_lines(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.INFO, logger="bot.audit")

    def lines() -> list[dict[str, Any]]:
        return [json.loads(r.getMessage()) for r in caplog.records if r.name == "bot.audit"]

    return lines
