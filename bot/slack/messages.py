"""The Block Kit of every message the bot sends: prompts, outcomes, notices, history.

The words come from bot/slack/words/ (one module per language), what each MailPartner answer means from
bot/mailpartner/answers.py; this module only lays them out, so one test sees exactly what Slack will show.
"""

from __future__ import annotations

import re
import time
from typing import Any

from bot.mailpartner.answers import FailureKind, Tally, answer_key
from bot.mailpartner.client import CancelOutcome
from bot.slack.commands import MAX_REASON, UsageReason
from bot.slack.ticket import MAX_IDS
from bot.slack.words import OUTCOME_EMOJI, outcome_words, ui
from bot.store.history import HistoryEvent

Message = dict[str, Any]  # {"text": fallback, "blocks": [...]}, ready for chat.postMessage or respond()


CONFIRM_ACTION = "cancel_mail_confirm"
KEEP_ACTION = "cancel_mail_keep"


def escape(text: str) -> str:
    """Escape Slack's three control characters in text that did not come from us."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_outcome(outcome: CancelOutcome, lang: str, *, with_next_step: bool = True) -> str:
    """One outcome in plain words: emoji, what happened, what to do next, and MailPartner's code."""
    key = answer_key(outcome.code, outcome.failure)
    what, next_step = outcome_words(key, lang)
    values = {
        "id": outcome.message_id,
        "code": outcome.code,
        "mp_message": escape(outcome.message) or "—",
        "status": outcome.http_status or "?",
    }
    text = f"{OUTCOME_EMOJI[key]} " + what.format(**values)
    if outcome.confirmed_on_retry:
        text += f" ({ui('on_retry', lang)})"
    if with_next_step and next_step:
        text += " " + next_step
    if outcome.code is not None:
        text += f" `code {outcome.code}`"
    return text


def _ids_text(ids: tuple[str, ...]) -> str:
    return ", ".join(f"`{i}`" for i in ids)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(*parts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(parts)[:3000]}]}


def _with_sandbox(blocks: list[dict[str, Any]], lang: str, sandbox: bool) -> list[dict[str, Any]]:
    return [_context(ui("sandbox", lang)), *blocks] if sandbox else blocks


def _message(text: str, blocks: list[dict[str, Any]], lang: str, sandbox: bool) -> Message:
    prefix = "[SANDBOX] " if sandbox else ""
    return {"text": prefix + text, "blocks": _with_sandbox(blocks, lang, sandbox)}


def reason_line(reason: str, lang: str) -> str:
    """The reason as typed, escaped so that no `<!channel>` or link in it does anything."""
    return ui("reason", lang, reason=escape(reason))


def prompt_message(
    ids: tuple[str, ...],
    requester: str,
    value: str,
    *,
    lang: str,
    ttl: float,
    second_person: bool,
    sandbox: bool,
    reason: str = "",
    workflow: bool = False,
) -> Message:
    """The confirm/keep prompt. `value` is the encoded ticket both buttons carry."""
    key = "prompt_second" if second_person else "prompt_workflow" if workflow else "prompt"
    key += "_many" if len(ids) > 1 else ""
    question = ui(key, lang, requester=requester, ids=_ids_text(ids))
    confirm_label = ui("confirm", lang) if len(ids) == 1 else ui("confirm_many", lang, n=len(ids))
    blocks = [
        _section(question),
        *([_section(reason_line(reason, lang))] if reason else []),
        _context(ui("prompt_expiry", lang, requester=requester, minutes=max(1, round(ttl / 60)))),
        {
            "type": "actions",
            "block_id": "cancel_mail_prompt",
            "elements": [
                {
                    "type": "button",
                    "action_id": CONFIRM_ACTION,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": confirm_label},
                    "value": value,
                },
                {
                    "type": "button",
                    "action_id": KEEP_ACTION,
                    "text": {"type": "plain_text", "text": ui("keep", lang)},
                    "value": value,
                },
            ],
        },
    ]
    return _message(question, blocks, lang, sandbox)


def status_message(key: str, ids: tuple[str, ...], user: str, *, lang: str, sandbox: bool) -> Message:
    """A prompt's replacement without buttons: `confirmed`, `kept` or `expired`."""
    text = ui(key, lang, user=user, ids=_ids_text(ids), ids_plain=" ".join(ids))
    return _message(text, [_section(text)], lang, sandbox)


def outcome_message(
    outcomes: list[CancelOutcome],
    *,
    confirmer: str,
    requester: str,
    lang: str,
    sandbox: bool,
    reason: str = "",
    recovered: bool = False,
) -> Message:
    """The public result: one outcome in full, or a summary with a line per mail and totals."""
    people = ui("by", lang, confirmer=confirmer)
    if requester and requester != confirmer:
        people += ", " + ui("requested", lang, requester=requester)
    why = [reason_line(reason, lang)] if reason else []
    if recovered:
        why.append(ui("recovered", lang))
    if len(outcomes) == 1:
        outcome = outcomes[0]
        text = render_outcome(outcome, lang)
        notes = [people, *why]
        if outcome.message:
            notes.append(ui("mp_said", lang, mp_message=escape(outcome.message)))
        return _message(text, [_section(text), _context(*notes)], lang, sandbox)
    counts = dict.fromkeys((t.value for t in Tally), 0)
    for outcome in outcomes:
        counts[outcome.meaning.tally.value] += 1
    lines = [render_outcome(o, lang, with_next_step=False) for o in outcomes]
    header = ui("summary", lang, n=len(outcomes))
    totals = ui("totals", lang, **counts)
    blocks = [_section(header)]
    # Sections hold 3000 characters: 25 lines can exceed one, so split them in chunks.
    for start in range(0, len(lines), 8):
        blocks.append(_section("\n".join(lines[start : start + 8])))
    blocks += [_section(totals), _context(people, *why)]
    return _message(f"{header} {totals}", blocks, lang, sandbox)


def problem_text(reason: UsageReason, offending: str, *, lang: str, bot_name: str = "cancel-mail") -> str:
    """What is wrong with a request, without the usage lines: for a form field or a workflow error."""
    return {
        UsageReason.HELP: "",
        UsageReason.NO_ID: ui("no_id", lang),
        UsageReason.INVALID_ID: ui("bad_id", lang, offending=escape(offending)),
        UsageReason.TOO_MANY: ui("too_many", lang, offending=escape(offending)),
        UsageReason.UNKNOWN_VERB: ui("unknown_verb", lang, offending=escape(offending)),
        UsageReason.VERB_MISSING: ui("verb_missing", lang, offending=escape(offending), bot=bot_name),
        UsageReason.REASON_UNMARKED: ui("reason_unmarked", lang, offending=escape(offending)),
        UsageReason.NOT_ID_LIKE: ui("not_id_like", lang, offending=escape(offending)),
        UsageReason.REASON_REQUIRED: ui("reason_required", lang),
        UsageReason.REASON_TOO_LONG: ui("reason_too_long", lang, offending=escape(offending), max_reason=MAX_REASON),
        UsageReason.TOO_LONG: ui("too_long", lang),
        UsageReason.HISTORY_ARGS: ui("history_args", lang),
    }[reason]


def usage_text(reason: UsageReason, offending: str, *, lang: str, bot_name: str = "cancel-mail") -> str:
    usage = ui("usage", lang, max=MAX_IDS, bot=bot_name, max_reason=MAX_REASON)
    return f"{problem_text(reason, offending, lang=lang, bot_name=bot_name)} {usage}".strip()


def history_line(event: HistoryEvent, lang: str, *, with_channel: bool) -> str:
    """One event in plain words: when, who, what, why; an outcome reads as it did in the channel."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(event.at))
    actor = f"<@{event.actor}>" if re.match(r"^[UW][A-Z0-9]+$", event.actor) else escape(event.actor or "—")
    ids = _ids_text(event.mail_ids) or "—"
    if event.action == "outcome" and event.mail_ids:
        failure = event.detail.get("failure")
        outcome = CancelOutcome(
            event.mail_ids[0],
            code=event.detail.get("code"),
            failure=FailureKind(failure) if failure in {f.value for f in FailureKind} else None,
        )
        what = render_outcome(outcome, lang, with_next_step=False)
        if event.detail.get("recovered"):
            what += " :recycle:"
    else:
        what = ui(
            f"h_{event.action}",
            lang,
            actor=actor,
            ids=ids,
            via=event.via or "—",
            refusal=event.detail.get("refusal", "—"),
            result=event.result or event.detail.get("result", "—"),
        )
    parts = [f"`{when}`", what]
    if with_channel and event.channel:
        parts.insert(1, f"<#{event.channel}>")
    if event.reason and event.action == "request":
        parts.append(ui("h_reason", lang, reason=escape(event.reason)))
    return "• " + " · ".join(parts)


def history_message(
    events: list[HistoryEvent] | None, *, lang: str, mail_id: str = "", limit: int | None = None
) -> Message:
    """`/cancel-mail history [id]`: newest first; None means the store did not answer.

    Given `limit`, at most that many are shown, and a last line says how to see the rest when `events`
    holds more.
    """
    if events is None:
        return notice("history_unavailable", lang)
    if not events:
        return notice("history_none_mail" if mail_id else "history_none_here", lang, mail=escape(mail_id))
    header = ui("history_mail", lang, mail=escape(mail_id)) if mail_id else ui("history_here", lang)
    more = limit is not None and len(events) > limit
    lines = [history_line(e, lang, with_channel=bool(mail_id)) for e in events[:limit]]
    blocks = [_section(header)]
    for start in range(0, len(lines), 8):  # sections hold 3000 characters
        blocks.append(_section("\n".join(lines[start : start + 8])))
    if more:
        blocks.append(_context(ui("history_more", lang, limit=limit)))
    return {"text": header, "blocks": blocks}


def notice(key: str, lang: str, **values: object) -> Message:
    """A one-line message such as a refusal, shown to one person."""
    text = ui(key, lang, **values)
    return {"text": text, "blocks": [_section(text)]}


def under_way_notice(ids: tuple[str, ...], confirmer: str, lang: str) -> Message:
    """To a second confirmer: these mails are being cancelled already, and by whom."""
    return notice("in_flight", lang, ids=_ids_text(ids), user=confirmer)
