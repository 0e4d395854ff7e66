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

from collections.abc import Sequence
from enum import Enum

from bot.mailpartner import CancelOutcome, FailureKind
from bot.messages import render_outcome

CALLBACK_ID = "cancel_scheduled_mail"

# MailPartner may have cancelled the mail before these failures: nobody can say it will be sent.
_FATE_UNKNOWN = frozenset({FailureKind.TIMEOUT, FailureKind.MALFORMED, FailureKind.HTTP_ERROR})


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
    if lost or any(o.failure in _FATE_UNKNOWN for o in outcomes):
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
    }


def confirmed_outputs(
    ids: Sequence[str], outcomes: Sequence[CancelOutcome], lost: Sequence[str], lang: str, *, sandbox: bool = False
) -> dict[str, object]:
    """Outputs after MailPartner answered (or did not), with the same words the channel was shown."""
    lines = [render_outcome(o, lang, with_next_step=len(outcomes) == 1) for o in outcomes]
    if sandbox:
        lines = [f"[SANDBOX] {line}" for line in lines]
    lines += [f":warning: `{i}`: the bot failed while cancelling it; the result is unknown." for i in lost]
    return step_outputs(
        outcome_result(outcomes, lost),
        ids,
        "\n".join(lines),
        cancelled_ids=[o.message_id for o in outcomes if o.cancelled],
    )
