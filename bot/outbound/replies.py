"""Where a flow's messages go: the prompt, the outcome, prompt updates, notes for one person, step ends.

Every message but a prompt's update is owed (bot/outbound/ledger.py): written to the store, then delivered
through outages and restarts. Each lists its ways, first to last resort:

    public (outcome, summary)   the thread by chat.postMessage, or the channel by the click's response_url;
                                then the other; then a direct message to the person it is for
    private (a note, a prompt)  the response_url (ephemeral), then chat.postEphemeral, then a direct message
    posted (thread prompt)      chat.postMessage
    step end                    functions.completeSuccess / completeError, with the run's own token

A prompt's update ("confirmed; the outcome follows") is cosmetic: kept in memory, behind the outcomes, and
dropped when a later update of the same prompt supersedes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.outbound.ledger import Ledger, OnDone
from bot.outbound.outbox import Priority
from bot.store import OwedRecord
from bot.words.blocks import Message

if TYPE_CHECKING:
    from bot.requests.ticket import StepRef


@dataclass(frozen=True)
class Conversation:
    """Where one flow lives. `prompt_ts` is set when the bot itself posted the prompt (thread flow)."""

    channel: str
    thread_ts: str = ""
    prompt_ts: str = ""
    response_url: str = ""

    @property
    def key(self) -> str:
        """One flow's messages go in order, one at a time."""
        return self.response_url or f"{self.channel}/{self.thread_ts}/{self.prompt_ts}"


def _web(method: str, token: str = "", **params: Any) -> dict[str, Any]:
    """A Web API way: what it adds to the message (channel, thread…); `token` a workflow run's own."""
    way: dict[str, Any] = {"via": "web", "method": method, "payload": {k: v for k, v in params.items() if v}}
    if token:
        way["token"] = token
    return way


class Replier:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.outbox = ledger.outbox

    # -- records: a message and its ways, ready to owe -----------------------------------------------

    def public(
        self, where: Conversation, message: Message, *, kind: str, person: str = "", replace: bool = False, **meta: Any
    ) -> OwedRecord:
        """For the whole conversation: the thread, or the channel through the response_url; `person` gets a
        direct message when neither works. `replace`: in place of the message the response_url answers."""
        by_post = _web("chat.postMessage", channel=where.channel, thread_ts=where.thread_ts)
        ways = [by_post]
        if where.response_url:
            by_url = self.ledger.url_way(
                where.response_url, {"response_type": "in_channel", "replace_original": replace}
            )
            ways = [by_post, by_url] if where.thread_ts else [by_url, by_post]
        if person:
            ways.append(_web("chat.postMessage", channel=person))
        return self.ledger.record(kind, where.channel, where.key, message, ways, actor=person, **meta)

    def private(
        self,
        where: Conversation,
        user: str,
        message: Message,
        *,
        kind: str = "note",
        replace: bool = False,
        **meta: Any,
    ) -> OwedRecord:
        """Only `user` sees it: ephemeral where the conversation is, else a direct message. `replace`: in
        place of the message the response_url answers."""
        ways = []
        if where.response_url:
            ways.append(
                self.ledger.url_way(where.response_url, {"response_type": "ephemeral", "replace_original": replace})
            )
        ways.append(_web("chat.postEphemeral", channel=where.channel, user=user, thread_ts=where.thread_ts))
        ways.append(_web("chat.postMessage", channel=user))
        return self.ledger.record(kind, where.channel, where.key, message, ways, actor=user, **meta)

    def posted(
        self, channel: str, message: Message, *, kind: str, thread_ts: str = "", token: str = "", **meta: Any
    ) -> OwedRecord:
        """chat.postMessage; `token`: a workflow run's own, so that clicks bring its `function_data` back."""
        way = _web("chat.postMessage", token, channel=channel, thread_ts=thread_ts)
        key = Conversation(channel, thread_ts).key
        return self.ledger.record(kind, channel, key, message, [way], **meta)

    def step_end(
        self, step: StepRef, channel: str, outputs: dict[str, object] | None, error: str, **meta: Any
    ) -> OwedRecord:
        if error:
            way = _web("functions.completeError", step.token, function_execution_id=step.execution_id, error=error)
        else:
            way = _web(
                "functions.completeSuccess", step.token, function_execution_id=step.execution_id, outputs=outputs
            )
            way["payload"].setdefault("outputs", {})
        text = error or str((outputs or {}).get("result", ""))
        return self.ledger.record("step_end", channel, f"step:{step.execution_id}", {}, [way], text=text, **meta)

    def send(self, *records: OwedRecord, on_done: OnDone | None = None, **owe: Any) -> None:
        """Owe `records` and deliver them; `on_done` is told how the first one went."""
        callbacks = {records[0].id: on_done} if on_done is not None and records else {}
        self.ledger.owe(list(records), on_done=callbacks, **owe)

    # -- the usual messages --------------------------------------------------------------------------

    def post_prompt(self, channel: str, thread_ts: str, message: Message, on_done: OnDone | None = None) -> None:
        self.send(self.posted(channel, message, kind="prompt", thread_ts=thread_ts), on_done=on_done)

    def tell(self, where: Conversation, user: str, message: Message, on_done: OnDone | None = None) -> None:
        self.send(self.private(where, user, message), on_done=on_done)

    def answer(self, where: Conversation, user: str, message: Message, *, public: bool, kind: str = "prompt") -> None:
        """A slash command's answer, in place of its "looking up…" placeholder: for the channel, or for `user`."""
        if public:
            self.send(self.public(where, message, kind=kind, person=user, replace=True))
        else:
            self.send(self.private(where, user, message, kind=kind, replace=True))

    def post(
        self, channel: str, message: Message, *, thread_ts: str = "", token: str = "", on_done: OnDone | None = None
    ) -> None:
        self.send(self.posted(channel, message, kind="note", thread_ts=thread_ts, token=token), on_done=on_done)

    def replace_prompt(self, where: Conversation, message: Message, on_done: OnDone | None = None) -> None:
        """Cosmetic: waits behind outcomes, and a later replacement of the same prompt drops this one."""
        by_update = _web("chat.update", channel=where.channel, ts=where.prompt_ts)
        ways = [by_update]
        if where.response_url:
            by_url = self.ledger.url_way(where.response_url, {"replace_original": True})
            ways = [by_update, by_url] if where.prompt_ts else [by_url, by_update]
        method = "chat.update" if where.prompt_ts else "response_url"
        self.outbox.submit(
            lambda: self.ledger.deliver_ways(ways, message),
            lane=where.channel,
            key=where.key,
            method=method,
            priority=Priority.COSMETIC,
            supersede=f"prompt:{where.key}",
            on_done=self.ledger.counted(method, on_done),
        )

    def wait_idle(self, timeout: float) -> bool:
        return self.ledger.wait_idle(timeout) and self.outbox.wait_idle(timeout)

    async def aclose(self) -> None:
        await self.ledger.slack.aclose()
