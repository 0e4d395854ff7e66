"""The Block Kit of every message the bot sends: prompts, outcomes, notices, history.

The words come from bot/words/ (one module per language), what each MailPartner answer means from
bot/mailpartner/answers.py; this module only lays them out, so one test sees exactly what Slack will show.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.mailpartner.accounts import MAX_REF_LENGTH, Preview, split_ref
from bot.mailpartner.answers import FailureKind, Report, Tally, answer_key
from bot.mailpartner.client import CancelOutcome, DeliveryReport
from bot.requests.commands import MAX_REASON, UsageReason
from bot.requests.ticket import MAX_IDS, is_direct_message
from bot.store.history import HistoryEvent
from bot.words import OUTCOME_EMOJI, format_number, format_time, has_word, outcome_words, ui

Message = dict[str, Any]  # {"text": fallback, "blocks": [...]}, ready for chat.postMessage or respond()


CONFIRM_ACTION = "cancel_mail_confirm"
KEEP_ACTION = "cancel_mail_keep"
PROMPT_BLOCK = "cancel_mail_prompt"  # the block of both buttons


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


def ids_text(ids: tuple[str, ...]) -> str:
    """`300`, `brand-b:301`: ids as every message shows them."""
    return ", ".join(f"`{i}`" for i in ids)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(*parts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(parts)[:3000]}]}


def _with_sandbox(blocks: list[dict[str, Any]], lang: str, sandbox: bool) -> list[dict[str, Any]]:
    return [_context(ui("sandbox", lang)), *blocks] if sandbox else blocks


def _message(text: str, blocks: list[dict[str, Any]], lang: str, sandbox: bool) -> Message:
    return {"text": sandbox_marked(text, lang, sandbox), "blocks": _with_sandbox(blocks, lang, sandbox)}


def sandbox_marked(text: str, lang: str, sandbox: bool) -> str:
    """Plain text (a notification, a workflow output, a terminal line) marked when the sandbox made it."""
    return f"{ui('sandbox_mark', lang)} {text}" if sandbox else text


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
    preview: Preview | None = None,
    private: bool = False,
) -> Message:
    """The confirm/keep prompt. `value` is the encoded ticket both buttons carry. `preview`: what MailPartner
    said of the mails (ids it reports gone out or cancelled are not in `ids`); `private`: only the requester
    sees it, so it may show a few recipients, masked."""
    key = "prompt_second" if second_person else "prompt_workflow" if workflow else "prompt"
    key += "_many" if len(ids) > 1 else ""
    question = ui(key, lang, requester=requester, ids=ids_text(ids))
    confirm_label = ui("confirm", lang) if len(ids) == 1 else ui("confirm_many", lang, n=len(ids))
    blocks = [
        _section(question),
        *([_section(preview_text(preview, lang, private=private))] if preview is not None else []),
        *([_section(reason_line(reason, lang))] if reason else []),
        _context(ui("prompt_expiry", lang, requester=requester, minutes=max(1, round(ttl / 60)))),
        {
            "type": "actions",
            "block_id": PROMPT_BLOCK,
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


def sandbox_note(text: str, *, lang: str, sandbox: bool) -> Message:
    """A one-line note drawn from what MailPartner (or the sandbox) said, marked like every sandbox message."""
    return _message(text, [_section(text)], lang, sandbox)


def audit_copy_text(
    outcomes: Sequence[CancelOutcome], *, confirmer: str, channel: str, link: str, lang: str, sandbox: bool
) -> str:
    """The audit channel's copy of an outcome: who confirmed, where (`link` stands for the permalink), what
    MailPartner said of each mail."""
    lines = "\n".join(render_outcome(o, lang, with_next_step=False) for o in outcomes)
    text = ui("audit_copy", lang, user=f"<@{confirmer}>", channel=f"<#{channel}>", link=link, lines=lines)
    return sandbox_marked(text, lang, sandbox)


def status_message(key: str, ids: tuple[str, ...], user: str, *, lang: str, sandbox: bool) -> Message:
    """A prompt's replacement without buttons: `confirmed`, `kept` or `expired`."""
    text = ui(key, lang, user=user, ids=ids_text(ids), ids_plain=" ".join(ids))
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
    lines = [render_outcome(o, lang, with_next_step=False) for o in outcomes]
    header = ui("summary", lang, n=len(outcomes))
    totals = totals_text(outcomes, lang)
    blocks = [_section(header)]
    # Sections hold 3000 characters: 25 lines can exceed one, so split them in chunks.
    for start in range(0, len(lines), 8):
        blocks.append(_section("\n".join(lines[start : start + 8])))
    blocks += [_section(totals), _context(people, *why)]
    return _message(f"{header} {totals}", blocks, lang, sandbox)


def totals_text(outcomes: Sequence[CancelOutcome], lang: str) -> str:
    """How many mails ended each way (answers.py's tallies): a summary's last line."""
    counts = dict.fromkeys((t.value for t in Tally), 0)
    for outcome in outcomes:
        counts[outcome.meaning.tally.value] += 1
    return ui("totals", lang, **{k: format_number(v, lang) for k, v in counts.items()})


def preview_text(preview: Preview, lang: str, *, private: bool = False) -> str:
    """What MailPartner said of each mail before the click: recipients and how far delivery went, or why it
    cannot say. Addresses only where `private`, three at most, masked."""
    lines = [_preview_line(ref, preview.report(ref), lang) for ref in preview.refs]
    left = preview.left  # what the confirm would cancel
    found = [r for ref in left if (r := preview.report(ref)) is not None and r.report is Report.FOUND]
    if len(left) > 1 and len(found) == len(left):  # a total of some mails only would read as all of them
        lines.append(ui("preview_total", lang, total=format_number(sum(r.total for r in found), lang)))
    if private and found:
        shown = [_masked(p.email) for r in found for p in r.recipients[:3] if p.email][:3]
        more = sum(r.total for r in found) - len(shown)
        if shown:
            extra = ui("preview_more", lang, n=format_number(more, lang)) if more > 0 else ""
            lines.append(ui("preview_to", lang, addresses=", ".join(f"`{a}`" for a in shown), more=extra))
    return "\n".join(lines)


# Which sentence says what a delivery report says.
_PREVIEW_KEYS = {
    Report.NO_REPORT: "preview_no_report",
    Report.KEY_REFUSED: "preview_refused",
    Report.ID_MISSING: "preview_odd",
    Report.UNEXPECTED: "preview_odd",
    Report.UNANSWERED: "preview_silent",
}


# A report not had because MailPartner was never reached: said as such, not as "did not say in time".
_UNREACHED = {
    FailureKind.CONNECTION: "preview_unreachable",
    FailureKind.NAME_UNRESOLVED: "preview_name_unresolved",
    FailureKind.CERTIFICATE: "preview_certificate_refused",
}


def _preview_line(ref: str, report: DeliveryReport | None, lang: str) -> str:
    ids = f"`{ref}`"
    if report is None:
        return ui("preview_silent", lang, ids=ids)
    if report.report is Report.UNANSWERED and report.failure in _UNREACHED:
        return ui(_UNREACHED[report.failure], lang, ids=ids)
    if report.report is not Report.FOUND:
        return ui(_PREVIEW_KEYS[report.report], lang, ids=ids, code=report.code)
    if not report.total:
        return ui("preview_empty", lang, ids=ids)
    if report.already_cancelled:
        return ui("preview_cancelled", lang, ids=ids)
    key = "preview_gone" if report.gone_out else "preview_partly" if report.delivered else "preview_recipients"
    total, delivered = format_number(report.total, lang), format_number(report.delivered, lang)
    return ui(key, lang, ids=ids, total=total, delivered=delivered)


def _masked(address: str) -> str:
    """`client0@example.fr` → `c***@example.fr`: enough to recognise a list, not to read an address."""
    local, at, domain = address.partition("@")
    return f"{escape(local[:1])}***{at}{escape(domain)}" if at else "***"


def problem_text(
    reason: UsageReason,
    offending: str,
    *,
    lang: str,
    bot_name: str = "cancel-mail",
    accounts: Sequence[str] = (),
) -> str:
    """What is wrong with a request, without the usage lines: for a form field or a workflow error."""
    if reason in (UsageReason.UNKNOWN_ACCOUNT, UsageReason.ACCOUNT_NEEDED):  # `offending`: the mail's reference
        account, message_id = split_ref(offending)
        example = f"{accounts[-1] if accounts else 'default'}:{message_id}"
        listed = ", ".join(f"`{a}`" for a in accounts)
        return ui(
            reason.value,
            lang,
            offending=escape(message_id),
            account=escape(account),
            accounts=listed,
            example=escape(example),
        )
    return {
        UsageReason.HELP: "",
        UsageReason.NO_ID: ui("no_id", lang),
        UsageReason.INVALID_ID: ui("bad_id", lang, offending=escape(offending)),
        UsageReason.ID_TOO_LONG: ui("id_too_long", lang, offending=escape(offending), limit=MAX_REF_LENGTH),
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


# The requests answered with the whole usage: a person asking how, or naming nothing to act on. Every other
# mistake is told in a line, with where the rest is: a typo costs one line to read.
WHOLE_USAGE = frozenset({UsageReason.HELP, UsageReason.NO_ID})


def usage_text(
    reason: UsageReason,
    offending: str,
    *,
    lang: str,
    bot_name: str = "cancel-mail",
    accounts: Sequence[str] = (),
) -> str:
    """What is wrong in a line, and where the rest is; the whole usage only for `help` and an empty request."""
    problem = problem_text(reason, offending, lang=lang, bot_name=bot_name, accounts=accounts)
    if reason in WHOLE_USAGE:
        return f"{problem} {ui('usage', lang, max=MAX_IDS, bot=bot_name, max_reason=MAX_REASON)}".strip()
    return f"{problem} {ui('more_help', lang)}"


def history_line(event: HistoryEvent, lang: str, *, with_channel: bool) -> str:
    """One event in plain words: when, who, what, why; an outcome reads as it did in the channel."""
    when = format_time(event.at, lang)
    actor = f"<@{event.actor}>" if re.match(r"^[UW][A-Z0-9]+$", event.actor) else escape(event.actor or "—")
    ids = ids_text(event.mail_ids) or "—"
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
            via=_stored_word("via", event.via, lang),
            refusal=_stored_word("refusal", event.detail.get("refusal"), lang),
            result=event.result or event.detail.get("result", "—"),
        )
    parts = [f"`{when}`", what]
    if with_channel and event.channel:
        parts.insert(1, ui("h_dm", lang) if is_direct_message(event.channel) else f"<#{event.channel}>")
    if event.detail.get("sandbox"):  # a row the simulator made never reads as a real mail's
        parts.insert(1, ui("h_sandbox", lang))
    if event.reason and event.action == "request":
        parts.append(ui("h_reason", lang, reason=escape(event.reason)))
    if event.action == "confirm" and event.detail.get("claim") == "unrecorded":
        parts.append(ui("h_unrecorded", lang))
    return "• " + " · ".join(parts)


def _stored_word(kind: str, label: str | None, lang: str) -> str:
    """A label the store keeps (`command`, `not_allowed_user`) in the reader's words; one this release has no
    word for (written by a newer one) as it is stored."""
    if not label:
        return "—"
    return ui(f"{kind}_{label}", lang) if has_word(f"{kind}_{label}", lang) else escape(label)


def history_message(
    events: list[HistoryEvent] | None, *, lang: str, mail_id: str = "", limit: int | None = None, mine: bool = False
) -> Message:
    """`/cancel-mail history [id]`: newest first; None means the store did not answer. `mine`: the person's own
    events from every conversation (a direct message's history), each line naming its conversation.

    Given `limit`, at most that many are shown, and a last line says how to see the rest when `events`
    holds more.
    """
    scope = "mail" if mail_id else "mine" if mine else "here"
    if events is None:
        return notice("history_unavailable", lang)
    if not events:
        return notice(f"history_none_{scope}", lang, mail=escape(mail_id))
    header = ui(f"history_{scope}", lang, mail=escape(mail_id))
    more = limit is not None and len(events) > limit
    lines = [history_line(e, lang, with_channel=scope != "here") for e in events[:limit]]
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
    return notice("in_flight", lang, ids=ids_text(ids), user=confirmer)
