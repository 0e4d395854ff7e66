"""The Workflow Builder step `cancel_scheduled_mail`: what its outputs say, made from what happened.

A workflow branches on `result`, so every way a step can end maps to exactly one value:

    every mail will not be sent ............................ cancelled
    some fate unknown (MailPartner silent, unreadable, 5xx)  unknown
    some cancelled, the others definitely not .............. partly_cancelled
    none cancelled, every answer definite .................. not_cancelled
    Keep pressed ........................................... kept
    confirmed after the prompt expired, or never answered .. expired
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING

from bot.cancels.recent import RecentIds
from bot.mailpartner.accounts import DEFAULT, split_ref
from bot.mailpartner.answers import Fate
from bot.mailpartner.client import CancelOutcome
from bot.requests.ticket import StepRef
from bot.words.blocks import render_outcome, sandbox_marked

if TYPE_CHECKING:
    from bot.audit.trail import AuditTrail
    from bot.outbound.replies import Replier
    from bot.store import Store

log = logging.getLogger(__name__)

CALLBACK_ID = "cancel_scheduled_mail"


class StepResult(Enum):
    CANCELLED = "cancelled"
    PARTLY_CANCELLED = "partly_cancelled"
    NOT_CANCELLED = "not_cancelled"
    UNKNOWN = "unknown"
    KEPT = "kept"
    EXPIRED = "expired"


def outcome_result(outcomes: Sequence[CancelOutcome], lost: Sequence[str] = ()) -> StepResult:
    """The result of a confirmed step; `lost` are ids whose cancel broke inside the bot (fate unknown)."""
    if not lost and all(o.cancelled for o in outcomes):
        return StepResult.CANCELLED
    if lost or any(o.meaning.fate is Fate.UNKNOWN for o in outcomes):
        return StepResult.UNKNOWN
    if any(o.cancelled for o in outcomes):
        return StepResult.PARTLY_CANCELLED
    return StepResult.NOT_CANCELLED


def step_outputs(
    result: StepResult, ids: Sequence[str], outcome: str, cancelled_ids: Sequence[str] = ()
) -> dict[str, object]:
    """The step's outputs, as declared in manifest.yml's `functions.cancel_scheduled_mail`."""
    cancelled = set(cancelled_ids)
    return {
        "result": result.value,
        "cancelled": bool(ids) and all(i in cancelled for i in ids),
        "cancelled_ids": ",".join(i for i in ids if i in cancelled),
        "not_cancelled_ids": ",".join(i for i in ids if i not in cancelled),
        "outcome": outcome,
        "account": ",".join(dict.fromkeys(split_ref(i)[0] or DEFAULT for i in ids)),
    }


def confirmed_outputs(
    ids: Sequence[str], outcomes: Sequence[CancelOutcome], lost: Sequence[str], lang: str, *, sandbox: bool = False
) -> dict[str, object]:
    """Outputs after MailPartner answered (or did not), with the same words the channel was shown."""
    lines = [render_outcome(o, lang, with_next_step=len(outcomes) == 1) for o in outcomes]
    if sandbox:
        lines = [sandbox_marked(line, lang, True) for line in lines]
    lines += [f":warning: `{i}`: the bot failed while cancelling it; the result is unknown." for i in lost]
    return step_outputs(
        outcome_result(outcomes, lost),
        ids,
        "\n".join(lines),
        cancelled_ids=[o.message_id for o in outcomes if o.cancelled],
    )


class WorkflowSteps:
    """Starts and ends runs of the step; each ends exactly once, whichever replica or sweep gets there first.

    The store decides who ends a run; while it is away, this process's memory does. The end itself
    (`functions.completeSuccess` / `completeError`, with the run's own token) is a message owed like any
    other: kept until Slack takes it, through outages and restarts.
    """

    def __init__(self, store: Store, audit: AuditTrail, replier: Replier) -> None:
        self.store = store
        self.audit = audit
        self.replier = replier
        self._ended = RecentIds()  # runs this process ended or saw ended

    async def started(self, step: StepRef, *, channel: str, ticket: str, expires_at: float) -> None:
        await self.store.register_step(
            step.execution_id, channel=channel, ticket=ticket, token=step.token, expires_at=expires_at
        )

    async def prompt_posted(self, step: StepRef, prompt_ts: str) -> None:
        await self.store.set_step_prompt(step.execution_id, prompt_ts)

    def has_ended(self, execution_id: str) -> bool:
        """Seen ended here (no database call): a second click on the same run is answered from memory."""
        return execution_id in self._ended

    def end(
        self,
        step: StepRef,
        outputs: dict[str, object] | None = None,
        *,
        error: str = "",
        actor: str = "",
        channel: str = "",
        then: Callable[[], None] | None = None,
    ) -> None:
        """End the run with `outputs`, or with `error`, unless it has ended already; `then` runs once it is
        ended here. Returns at once: the end is owed, and delivered by the ledger."""
        result = str((outputs or {}).get("result", "error"))

        def owed(first: bool | None) -> bool:
            ended = self.ended(step, result, first, actor=actor, channel=channel, error=error)
            if ended and then is not None:
                then()
            return ended

        record = self.replier.step_end(step, channel, outputs, error, actor=actor)
        self.replier.send(record, end_step=(step.execution_id, result), on_owed=owed)

    def ended(
        self, step: StepRef, result: str, first: bool | None, *, actor: str, channel: str, error: str = ""
    ) -> bool:
        """The store said whether this process ended the run (`first`; None: it cannot tell, and this
        process's memory decides). True: it did, and it is audited."""
        first_here = self._ended.first_time(step.execution_id)
        if first is None:
            first = first_here
        if not first:
            log.info("workflow step %s has already ended; not ending it again", step.execution_id)
            return False
        self.audit(
            "step_end", actor=actor, channel=channel, execution=step.execution_id, result=result, error=error or None
        )
        return True
