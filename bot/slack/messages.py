"""Everything a person reads, in English and French: outcome wording and the Block Kit around it.

Wording and layout live together so that one test sees exactly what Slack will show. The outcome of a
cancel is looked up in `OUTCOMES`, one row per MailPartner control code or failure kind.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from bot.mailpartner.client import CancelOutcome, FailureKind
from bot.slack.commands import MAX_REASON, UsageReason
from bot.slack.ticket import MAX_IDS
from bot.store.history import HistoryEvent

Message = dict[str, Any]  # {"text": fallback, "blocks": [...]}, ready for chat.postMessage or respond()


class Tally(Enum):
    """The columns of a bulk summary."""

    CANCELLED = "cancelled"
    TOO_LATE = "too_late"
    ALREADY_SENT = "already_sent"
    NOT_FOUND = "not_found"
    FAILED = "failed"


@dataclass(frozen=True)
class OutcomeText:
    emoji: str
    tally: Tally
    en: str
    fr: str
    next_en: str = ""
    next_fr: str = ""


_RETRY_SAFE_EN = (
    "Asking again is safe: if the first request went through, MailPartner answers that it is already cancelled."
)
_RETRY_SAFE_FR = (
    "Vous pouvez redemander sans risque : si la première demande est passée, "
    "MailPartner répondra que l'envoi est déjà annulé."
)

# Keys: a MailPartner control code, a FailureKind, or "unknown_code".
OUTCOMES: dict[int | FailureKind | str, OutcomeText] = {
    200: OutcomeText(
        ":white_check_mark:",
        Tally.CANCELLED,
        "Mail `{id}` is cancelled: it will not be sent.",
        "L'envoi du mail `{id}` est annulé : il ne partira pas.",
    ),
    5: OutcomeText(
        ":white_check_mark:",
        Tally.CANCELLED,
        "Mail `{id}` was already cancelled: it will not be sent.",
        "L'envoi du mail `{id}` était déjà annulé : il ne partira pas.",
    ),
    4: OutcomeText(
        ":grey_question:",
        Tally.NOT_FOUND,
        "Mail `{id}` was not found at MailPartner; nothing was cancelled.",
        "Le mail `{id}` est introuvable chez MailPartner ; rien n'a été annulé.",
        "Check the id: it is the `messageId` MailPartner returned when the mail was scheduled.",
        "Vérifiez l'identifiant : c'est le `messageId` renvoyé par MailPartner lors de la programmation.",
    ),
    6: OutcomeText(
        ":alarm_clock:",
        Tally.TOO_LATE,
        "Too late: mail `{id}` goes out in under 5 minutes and can no longer be cancelled.",
        "Trop tard : le mail `{id}` part dans moins de 5 minutes et ne peut plus être annulé.",
        "The mail will be sent. Warn the people concerned or prepare a follow-up.",
        "Le mail sera envoyé. Prévenez les personnes concernées ou préparez un correctif.",
    ),
    7: OutcomeText(
        ":outbox_tray:",
        Tally.ALREADY_SENT,
        "Mail `{id}` was already sent; it cannot be cancelled.",
        "Le mail `{id}` est déjà parti ; il ne peut plus être annulé.",
        "Prepare a follow-up if needed.",
        "Préparez un correctif si nécessaire.",
    ),
    10: OutcomeText(
        ":closed_lock_with_key:",
        Tally.FAILED,
        "MailPartner refused the bot's API key; mail `{id}` was not cancelled.",
        "MailPartner a refusé la clé API du bot ; le mail `{id}` n'a pas été annulé.",
        "An administrator must fix `MAILPARTNER_API_KEY`, then ask again.",
        "Un administrateur doit corriger `MAILPARTNER_API_KEY`, puis redemandez.",
    ),
    1: OutcomeText(
        ":closed_lock_with_key:",
        Tally.FAILED,
        "MailPartner says the API key is missing; mail `{id}` was not cancelled.",
        "MailPartner indique que la clé API manque ; le mail `{id}` n'a pas été annulé.",
        "An administrator must set `MAILPARTNER_API_KEY`, then ask again.",
        "Un administrateur doit renseigner `MAILPARTNER_API_KEY`, puis redemandez.",
    ),
    3: OutcomeText(
        ":warning:",
        Tally.FAILED,
        "MailPartner says the mail id is missing; mail `{id}` was not cancelled.",
        "MailPartner indique que l'identifiant du mail manque ; le mail `{id}` n'a pas été annulé.",
        "This is a bug in the bot: please report it, and cancel from MailPartner's site meanwhile.",
        "C'est un bogue du bot : signalez-le, et annulez depuis le site de MailPartner en attendant.",
    ),
    "unknown_code": OutcomeText(
        ":warning:",
        Tally.FAILED,
        "MailPartner answered with an unexpected code {code} for mail `{id}`: “{mp_message}”.",
        "MailPartner a répondu par un code inattendu {code} pour le mail `{id}` : « {mp_message} ».",
        "The mail is probably not cancelled: check it on MailPartner's site.",
        "L'envoi n'est probablement pas annulé : vérifiez sur le site de MailPartner.",
    ),
    FailureKind.TIMEOUT: OutcomeText(
        ":hourglass:",
        Tally.FAILED,
        "MailPartner did not answer in time for mail `{id}`: the result is unknown.",
        "MailPartner n'a pas répondu à temps pour le mail `{id}` : le résultat est inconnu.",
        _RETRY_SAFE_EN,
        _RETRY_SAFE_FR,
    ),
    FailureKind.CONNECTION: OutcomeText(
        ":electric_plug:",
        Tally.FAILED,
        "Could not reach MailPartner for mail `{id}`; it was not cancelled.",
        "Impossible de joindre MailPartner pour le mail `{id}` ; il n'a pas été annulé.",
        "Try again in a minute. If it persists, check MailPartner's status.",
        "Réessayez dans une minute. Si cela persiste, vérifiez l'état de MailPartner.",
    ),
    FailureKind.HTTP_ERROR: OutcomeText(
        ":warning:",
        Tally.FAILED,
        "MailPartner failed with HTTP {status} for mail `{id}`; it was probably not cancelled.",
        "MailPartner a échoué (HTTP {status}) pour le mail `{id}` ; il n'a probablement pas été annulé.",
        _RETRY_SAFE_EN,
        _RETRY_SAFE_FR,
    ),
    FailureKind.MALFORMED: OutcomeText(
        ":warning:",
        Tally.FAILED,
        "MailPartner sent an answer the bot cannot read (HTTP {status}) for mail `{id}`: the result is unknown.",
        "MailPartner a envoyé une réponse illisible (HTTP {status}) pour le mail `{id}` : le résultat est inconnu.",
        _RETRY_SAFE_EN,
        _RETRY_SAFE_FR,
    ),
}

_UI: dict[str, dict[str, str]] = {
    "en": {
        "sandbox": ":test_tube: *SANDBOX* — no real mail is affected.",
        "prompt": "Cancel scheduled mail {ids} at MailPartner? This cannot be undone.",
        "prompt_many": "Cancel scheduled mails {ids} at MailPartner? This cannot be undone.",
        "prompt_second": "<@{requester}> asks to cancel scheduled mail {ids} at MailPartner. "
        "*A second person* who is allowed must confirm.",
        "prompt_second_many": "<@{requester}> asks to cancel scheduled mails {ids} at MailPartner. "
        "*A second person* who is allowed must confirm.",
        "prompt_workflow": "<@{requester}> asks, through a workflow, to cancel scheduled mail {ids} at "
        "MailPartner. This cannot be undone.",
        "prompt_workflow_many": "<@{requester}> asks, through a workflow, to cancel scheduled mails {ids} at "
        "MailPartner. This cannot be undone.",
        "prompt_expiry": "Requested by <@{requester}> · expires in {minutes} min",
        "reason": "*Reason:* {reason}",
        "confirm": "Cancel the mail",
        "confirm_many": "Cancel {n} mails",
        "keep": "Keep it",
        "confirmed": ":ballot_box_with_check: <@{user}> confirmed cancelling {ids}; the outcome follows below.",
        "kept": ":ok_hand: <@{user}> kept {ids}; nothing was cancelled.",
        "expired": ":stopwatch: This request expired before it was confirmed; nothing was cancelled. "
        "Ask again with `/cancel-mail {ids_plain}`.",
        "by": "Confirmed by <@{confirmer}>",
        "requested": "requested by <@{requester}>",
        "mp_said": "MailPartner: “{mp_message}”",
        "on_retry": "confirmed on a retry after MailPartner's first silence",
        "recovered": ":recycle: Recovered after an interruption: the bot restarted mid-cancel and asked "
        "MailPartner again",
        "summary": "Outcome of cancelling {n} mails:",
        "totals": "*Totals:* {cancelled} cancelled · {too_late} too late · {already_sent} already sent · "
        "{not_found} not found · {failed} failed",
        "usage": "Usage: `/cancel-mail <id>` (up to {max} ids separated by spaces; then ` -- why` to give a "
        "reason), or mention me in a thread: `@{bot} cancel <id> -- why`. An id is 1–64 letters, digits, "
        "`-` or `_`, not starting with `-` — the `messageId` MailPartner returned when the mail was scheduled. "
        "The reason is up "
        "to {max_reason} characters. You will be asked to confirm.",
        "bad_id": "`{offending}` is not a valid mail id.",
        "no_id": "Which mail? Give its id.",
        "too_many": "{offending} ids is too many at once.",
        "unknown_verb": "I don't know `{offending}`.",
        "verb_missing": "Say `cancel` before the ids: `@{bot} cancel {offending}`.",
        "reason_unmarked": "Words that are not mail ids follow the ids. If they are the reason, put ` -- ` "
        "before them: `{offending}`.",
        "not_id_like": "`{offending}` does not look like mail ids (they have digits, like `302`). The reason "
        "has a field of its own.",
        "reason_required": "Say why: a reason is required here, after ` -- `.",
        "reason_too_long": "The reason is {offending} characters; keep it to {max_reason}.",
        "too_long": "These ids and this reason do not fit in one request; send fewer ids or a shorter reason.",
        "history_args": "History takes one mail id at most: `/cancel-mail history` or `/cancel-mail history 300`.",
        "not_allowed_user": ":no_entry: You are not allowed to cancel mails with this bot; nothing was "
        "done. Ask someone on the on-call list.",
        "not_allowed_channel": ":no_entry: Mails cannot be cancelled from this channel; nothing was done. "
        "Use an on-call channel.",
        "own_request": ":busts_in_silhouette: A second person must confirm your own request; you can "
        "still withdraw it with “Keep it”.",
        "in_flight": ":hourglass_flowing_sand: A cancel of {ids} is already under way, confirmed by "
        "<@{user}>; its outcome will be posted here.",
        "shutting_down": ":construction: The bot is restarting and takes no new cancels; nothing was "
        "done. Ask again in a minute.",
        "error": ":warning: Something went wrong on the bot's side; nothing was cancelled. Ask again, and "
        "tell an administrator if it persists.",
        "stale": ":stopwatch: This button no longer works; nothing was done. Ask again.",
        "history_mail": "*History of mail `{mail}`*, newest first:",
        "history_here": "*Cancel history in this conversation*, newest first:",
        "history_none_mail": "Nothing is recorded about mail `{mail}`.",
        "history_none_here": "Nothing is recorded in this conversation yet.",
        "history_more": "Showing the {limit} newest; there are more. See one mail's with `/cancel-mail history "
        "<id>`, or all of them where the bot runs: `python -m bot history --limit 200` (or `--since 7d`).",
        "history_unavailable": ":warning: The history is unavailable right now: the bot's database does not "
        "answer. Cancels still work, and the log keeps every action.",
        "h_request": "{actor} asked to cancel {ids} ({via})",
        "h_refusal": "{actor} was refused ({refusal}) for {ids}",
        "h_confirm": "{actor} confirmed the cancel of {ids}",
        "h_keep": "{actor} kept {ids}",
        "h_expiry": "{actor} confirmed {ids} after the prompt expired; nothing was cancelled",
        "h_duplicate": "{actor} confirmed {ids} while a cancel was under way",
        "h_post_failed": "the outcome for {ids} could not be posted to Slack",
        "h_recovery": "the bot took over the cancel of {ids} confirmed by {actor}, after an interruption",
        "h_step_end": "a workflow run ended: `{result}`",
        "h_reason": "reason: “{reason}”",
        "form_title": "Cancel scheduled mail",
        "form_submit": "Ask to cancel",
        "form_close": "Close",
        "form_ids": "Mail ids",
        "form_ids_placeholder": "300 301",
        "form_ids_hint": "The messageId of each mail, separated by spaces, commas or new lines; up to {max}.",
        "form_reason": "Reason",
        "form_reason_placeholder": "Why these mails must not go out",
        "form_conversation": "Post the confirmation in",
        "form_note": "Nothing is cancelled yet: you (or a second person) confirm with a button first.",
        "pick_conversation": "Choose the conversation where the confirmation goes.",
        "prompt_undelivered": ":warning: I could not post the confirmation in <#{channel}>; nothing was "
        "cancelled. Invite me there (`/invite @cancel-mail`) or use `/cancel-mail` in that channel.",
        "step_failed": "The bot failed while starting this step; nothing was cancelled. Run the workflow "
        "again, and tell an administrator if it persists.",
    },
    "fr": {
        "sandbox": ":test_tube: *BAC À SABLE* — aucun vrai mail n'est touché.",
        "prompt": "Annuler l'envoi programmé du mail {ids} chez MailPartner ? C'est irréversible.",
        "prompt_many": "Annuler l'envoi programmé des mails {ids} chez MailPartner ? C'est irréversible.",
        "prompt_second": "<@{requester}> demande l'annulation du mail {ids} chez MailPartner. "
        "*Une deuxième personne* autorisée doit confirmer.",
        "prompt_second_many": "<@{requester}> demande l'annulation des mails {ids} chez MailPartner. "
        "*Une deuxième personne* autorisée doit confirmer.",
        "prompt_workflow": "<@{requester}> demande, par un workflow, l'annulation du mail {ids} chez "
        "MailPartner. C'est irréversible.",
        "prompt_workflow_many": "<@{requester}> demande, par un workflow, l'annulation des mails {ids} chez "
        "MailPartner. C'est irréversible.",
        "prompt_expiry": "Demandé par <@{requester}> · expire dans {minutes} min",
        "reason": "*Motif :* {reason}",
        "confirm": "Annuler l'envoi",
        "confirm_many": "Annuler {n} mails",
        "keep": "Le garder",
        "confirmed": ":ballot_box_with_check: <@{user}> a confirmé l'annulation de {ids} ; le résultat suit plus bas.",
        "kept": ":ok_hand: <@{user}> a gardé {ids} ; rien n'a été annulé.",
        "expired": ":stopwatch: Cette demande a expiré avant d'être confirmée ; rien n'a été annulé. "
        "Redemandez avec `/cancel-mail {ids_plain}`.",
        "by": "Confirmé par <@{confirmer}>",
        "requested": "demandé par <@{requester}>",
        "mp_said": "MailPartner : « {mp_message} »",
        "on_retry": "confirmé par une nouvelle tentative après le silence de MailPartner",
        "recovered": ":recycle: Repris après une interruption : le bot a redémarré pendant l'annulation et a "
        "redemandé à MailPartner",
        "summary": "Résultat de l'annulation de {n} mails :",
        "totals": "*Total :* {cancelled} annulés · {too_late} trop tard · {already_sent} déjà partis · "
        "{not_found} introuvables · {failed} en échec",
        "usage": "Usage : `/cancel-mail <id>` (jusqu'à {max} identifiants séparés par des espaces ; puis "
        "` -- motif` pour dire pourquoi), ou mentionnez-moi dans un fil : `@{bot} cancel <id> -- motif`. "
        "Un identifiant compte 1 à 64 lettres, chiffres, `-` ou `_`, sans `-` en tête : le `messageId` renvoyé par "
        "MailPartner à la programmation. Le motif compte {max_reason} caractères au plus. Une "
        "confirmation vous sera demandée.",
        "bad_id": "`{offending}` n'est pas un identifiant de mail valide.",
        "no_id": "Quel mail ? Donnez son identifiant.",
        "too_many": "{offending} identifiants, c'est trop à la fois.",
        "unknown_verb": "Je ne connais pas `{offending}`.",
        "verb_missing": "Dites `cancel` avant les identifiants : `@{bot} cancel {offending}`.",
        "reason_unmarked": "Des mots qui ne sont pas des identifiants suivent les identifiants. Si c'est le "
        "motif, mettez ` -- ` devant : `{offending}`.",
        "not_id_like": "`{offending}` ne ressemble pas à des identifiants de mail (ils ont des chiffres, comme "
        "`302`). Le motif a son propre champ.",
        "reason_required": "Dites pourquoi : un motif est exigé ici, après ` -- `.",
        "reason_too_long": "Le motif compte {offending} caractères ; {max_reason} au plus.",
        "too_long": "Ces identifiants et ce motif ne tiennent pas dans une demande ; envoyez moins "
        "d'identifiants ou un motif plus court.",
        "history_args": "L'historique prend un identifiant au plus : `/cancel-mail history` ou "
        "`/cancel-mail history 300`.",
        "not_allowed_user": ":no_entry: Vous n'êtes pas autorisé à annuler des mails avec ce bot ; rien "
        "n'a été fait. Demandez à une personne d'astreinte.",
        "not_allowed_channel": ":no_entry: Impossible d'annuler des mails depuis ce canal ; rien n'a été "
        "fait. Utilisez un canal d'astreinte.",
        "own_request": ":busts_in_silhouette: Une deuxième personne doit confirmer votre propre demande ; "
        "vous pouvez encore la retirer avec « Le garder ».",
        "in_flight": ":hourglass_flowing_sand: L'annulation de {ids} est déjà en cours, confirmée par "
        "<@{user}> ; le résultat sera publié ici.",
        "shutting_down": ":construction: Le bot redémarre et ne prend pas de nouvelle annulation ; rien "
        "n'a été fait. Redemandez dans une minute.",
        "error": ":warning: Un problème est survenu côté bot ; rien n'a été annulé. Redemandez, et "
        "prévenez un administrateur si cela persiste.",
        "stale": ":stopwatch: Ce bouton ne fonctionne plus ; rien n'a été fait. Redemandez.",
        "history_mail": "*Historique du mail `{mail}`*, du plus récent au plus ancien :",
        "history_here": "*Historique des annulations dans cette conversation*, du plus récent au plus ancien :",
        "history_none_mail": "Rien n'est enregistré pour le mail `{mail}`.",
        "history_none_here": "Rien n'est encore enregistré dans cette conversation.",
        "history_more": "Les {limit} plus récents seulement ; il y en a d'autres. Ceux d'un mail : "
        "`/cancel-mail history <id>` ; tous, là où tourne le bot : `python -m bot history --limit 200` "
        "(ou `--since 7d`).",
        "history_unavailable": ":warning: L'historique est indisponible : la base de données du bot ne répond "
        "pas. Les annulations fonctionnent toujours, et le journal garde chaque action.",
        "h_request": "{actor} a demandé l'annulation de {ids} ({via})",
        "h_refusal": "{actor} a été refusé ({refusal}) pour {ids}",
        "h_confirm": "{actor} a confirmé l'annulation de {ids}",
        "h_keep": "{actor} a gardé {ids}",
        "h_expiry": "{actor} a confirmé {ids} après l'expiration ; rien n'a été annulé",
        "h_duplicate": "{actor} a confirmé {ids} pendant une annulation en cours",
        "h_post_failed": "le résultat pour {ids} n'a pas pu être publié dans Slack",
        "h_recovery": "le bot a repris l'annulation de {ids} confirmée par {actor}, après une interruption",
        "h_step_end": "une exécution de workflow s'est terminée : `{result}`",
        "h_reason": "motif : « {reason} »",
        "form_title": "Annuler un envoi",
        "form_submit": "Demander",
        "form_close": "Fermer",
        "form_ids": "Identifiants des mails",
        "form_ids_placeholder": "300 301",
        "form_ids_hint": "Le messageId de chaque mail, séparés par des espaces, des virgules ou des retours "
        "à la ligne ; {max} au plus.",
        "form_reason": "Motif",
        "form_reason_placeholder": "Pourquoi ces mails ne doivent pas partir",
        "form_conversation": "Publier la confirmation dans",
        "form_note": "Rien n'est encore annulé : vous (ou une deuxième personne) confirmez d'abord avec un bouton.",
        "pick_conversation": "Choisissez la conversation où publier la confirmation.",
        "prompt_undelivered": ":warning: Impossible de publier la confirmation dans <#{channel}> ; rien n'a "
        "été annulé. Invitez-moi (`/invite @cancel-mail`) ou utilisez `/cancel-mail` dans ce canal.",
        "step_failed": "Le bot a échoué au démarrage de cette étape ; rien n'a été annulé. Relancez le "
        "workflow, et prévenez un administrateur si cela persiste.",
    },
}

CONFIRM_ACTION = "cancel_mail_confirm"
KEEP_ACTION = "cancel_mail_keep"


def ui(key: str, lang: str, **values: object) -> str:
    return _UI[lang][key].format(**values)


def escape(text: str) -> str:
    """Escape Slack's three control characters in text that did not come from us."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def outcome_text(outcome: CancelOutcome) -> OutcomeText:
    if outcome.failure is not None:
        return OUTCOMES[outcome.failure]
    return OUTCOMES.get(outcome.code, OUTCOMES["unknown_code"])  # type: ignore[arg-type]


def render_outcome(outcome: CancelOutcome, lang: str, *, with_next_step: bool = True) -> str:
    """One outcome in plain words: emoji, what happened, what to do next, and MailPartner's code."""
    row = outcome_text(outcome)
    values = {
        "id": outcome.message_id,
        "code": outcome.code,
        "mp_message": escape(outcome.message) or "—",
        "status": outcome.http_status or "?",
    }
    text = f"{row.emoji} " + (row.en if lang == "en" else row.fr).format(**values)
    if outcome.confirmed_on_retry:
        text += f" ({ui('on_retry', lang)})"
    next_step = row.next_en if lang == "en" else row.next_fr
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
        counts[outcome_text(outcome).tally.value] += 1
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


_EMOJI = {
    ":white_check_mark:": "✅",
    ":grey_question:": "❔",
    ":alarm_clock:": "⏰",
    ":outbox_tray:": "📤",
    ":closed_lock_with_key:": "🔐",
    ":warning:": "⚠️",
    ":hourglass:": "⌛",
    ":electric_plug:": "🔌",
    ":hourglass_flowing_sand:": "⏳",
    ":ballot_box_with_check:": "☑️",
    ":ok_hand:": "👌",
    ":stopwatch:": "⏱️",
    ":no_entry:": "⛔",
    ":busts_in_silhouette:": "👥",
    ":construction:": "🚧",
    ":test_tube:": "🧪",
    ":recycle:": "♻️",
}


def terminal_text(text: str, *, me: str = "", channels: dict[str, str] | None = None) -> str:
    """Slack mrkdwn as a terminal shows it: emoji drawn, mentions as @names, entities decoded.

    `channels` names the channel ids the terminal knows (the console's #on-call), as Slack would show them.
    """
    names = channels or {}
    text = re.sub(r":[a-z_]+:", lambda m: _EMOJI.get(m.group(0), m.group(0)), text)
    if me:
        text = text.replace(f"<@{me}>", "@you")
    text = re.sub(r"<@([A-Z0-9]+)>", r"@\1", text)
    text = re.sub(
        r"<#([A-Z0-9]+)(?:\|([^>]*))?>", lambda m: "#" + (m.group(2) or names.get(m.group(1)) or m.group(1)), text
    )
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
