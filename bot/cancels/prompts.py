"""What a request becomes before its buttons: each id placed in its account, what MailPartner says of each
mail (the preview), the ticket the buttons carry, and the prompt itself. Every way in (inbound/listeners/)
asks here, so a command, a mention, a form, a direct message and a workflow run prompt alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from bot.mailpartner.accounts import Accounts, Preview, split_ref
from bot.requests.commands import CancelRequest, UsageReason
from bot.requests.ticket import PromptTicket, ticket_fits
from bot.words.blocks import Message, ids_text, problem_text, prompt_message, sandbox_note, ui


@dataclass(frozen=True)
class NothingLeft:
    """A workflow run's mails have all gone out: what the channel reads, and what MailPartner said of each."""

    note: Message
    preview: Preview


class Prompts:
    def __init__(
        self,
        accounts: Accounts,
        *,
        lang: str,
        sandbox: bool,
        prompt_ttl: float,
        second_person: bool,
        clock: Callable[[], float],
    ) -> None:
        """`lang`: the bot's, what a channel reads; `second_person`: the two-person rule, which every ticket
        carries; `clock`: the tickets' (a prompt expires `prompt_ttl` s after it is issued)."""
        self.accounts = accounts
        self.lang = lang
        self.sandbox = sandbox
        self.prompt_ttl = prompt_ttl
        self.second_person = second_person
        self.clock = clock

    def unknown_account(self, request: CancelRequest) -> str:
        """The first mail whose account the bot does not have (`brand-x:301`), or ``: before any call."""
        unknown = set(self.accounts.unknown(request.ids))
        return next((ref for ref in request.ids if split_ref(ref)[0] in unknown), "")

    async def prepare(
        self,
        request: CancelRequest,
        requester: str,
        channel: str,
        *,
        thread_ts: str = "",
        workflow: bool = False,
        lang: str = "",
    ) -> tuple[PromptTicket, Preview] | NothingLeft | Message:
        """Place each id in its account and ask MailPartner what each mail is (PREVIEW_WAIT s at most): the
        ticket for the mails left to cancel and what MailPartner said, or the note to send the person instead
        (for a workflow whose every mail has gone out, that note with the preview: the run ends with it).
        Runs off the ack path: it waits for MailPartner (a coroutine: nothing is held meanwhile). `lang`: the
        reader's, when not the channel's."""
        lang = lang or self.lang
        preview = await self.accounts.preview(request.ids, channel)
        if preview.unplaced:
            names = self.accounts.names
            problem = problem_text(UsageReason.ACCOUNT_NEEDED, preview.unplaced[0], lang=lang, accounts=names)
            return sandbox_note(":grey_question: " + problem, lang=lang, sandbox=self.sandbox)
        # A workflow's outputs name every mail it was given: one cancelled already, or gone out, stays in its
        # ticket, and the click tells it as MailPartner answers (code 5: cancelled; code 7: sent); a run whose
        # every mail has gone out ends at once, not cancelled. A person is told at once, with no button for it.
        all_gone = set(preview.refs) <= set(preview.gone_out)
        left = (() if all_gone else preview.refs) if workflow else preview.left
        if not left:  # each mail gone out or cancelled already: say which, and offer no button
            settled = {"nothing_to_cancel": preview.gone_out, "nothing_to_cancel_cancelled": preview.already_cancelled}
            text = "\n".join(ui(key, lang, ids=ids_text(refs)) for key, refs in settled.items() if refs)
            note = sandbox_note(text, lang=lang, sandbox=self.sandbox)
            return NothingLeft(note, preview) if workflow else note
        if not ticket_fits(left, request.reason):
            return sandbox_note(problem_text(UsageReason.TOO_LONG, "", lang=lang), lang=lang, sandbox=False)
        ticket = self.ticket(CancelRequest(left, request.reason), requester, channel, thread_ts=thread_ts)
        # The prompt's language travels in its ticket, so its updates (confirmed, kept) keep it.
        return dataclasses.replace(ticket, workflow=workflow, lang="" if lang == self.lang else lang), preview

    def ticket(self, request: CancelRequest, user: str, channel: str, thread_ts: str = "") -> PromptTicket:
        """What the prompt's buttons carry: everything a confirm needs, on any replica, after any restart."""
        return PromptTicket(
            ids=request.ids,
            requester=user,
            channel=channel,
            issued_at=self.clock(),
            thread_ts=thread_ts,
            second_person=self.second_person,
            reason=request.reason,
        )

    def prompt(self, ticket: PromptTicket, preview: Preview | None = None, *, private: bool = False) -> Message:
        return prompt_message(
            ticket.ids,
            ticket.requester,
            ticket.encode(),
            lang=ticket.lang or self.lang,
            ttl=self.prompt_ttl,
            second_person=ticket.second_person,
            sandbox=self.sandbox,
            reason=ticket.reason,
            workflow=ticket.workflow,
            preview=preview,
            private=private,
        )
