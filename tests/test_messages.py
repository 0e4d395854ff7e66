"""Layer 1: what people read, for every control code and failure kind, in both languages."""

from __future__ import annotations

import json

import pytest

from bot.console.wire import blocks_text, buttons
from bot.mailpartner.answers import ANSWERS
from bot.mailpartner.client import CancelOutcome, FailureKind
from bot.requests.commands import UsageReason
from bot.words import LANGUAGES, OUTCOME_EMOJI
from bot.words.blocks import WHOLE_USAGE, escape, outcome_message, prompt_message, render_outcome, usage_text

CODES = [1, 3, 4, 5, 6, 7, 10, 200]
EXPECTED = {
    ("en", 200): "is cancelled",
    ("fr", 200): "est annulé",
    ("en", 5): "already cancelled",
    ("fr", 5): "déjà annulé",
    ("en", 4): "not found",
    ("fr", 4): "introuvable",
    ("en", 6): "Too late",
    ("fr", 6): "Trop tard",
    ("en", 7): "already sent",
    ("fr", 7): "déjà parti",
    ("en", 10): "refused the bot's API key",
    ("fr", 10): "refusé la clé API",
    ("en", 1): "API key is missing",
    ("fr", 1): "clé API manque",
    ("en", 3): "mail id is missing",
    ("fr", 3): "identifiant du mail manque",
}


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("code", CODES)
def test_every_code_in_both_languages(lang: str, code: int) -> None:
    text = render_outcome(CancelOutcome("300", code=code, message="msg"), lang)
    assert EXPECTED[(lang, code)] in text
    assert "`300`" in text and f"`code {code}`" in text


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_next_steps(lang: str) -> None:
    too_late = render_outcome(CancelOutcome("300", code=6), lang)
    assert ("will be sent" if lang == "en" else "sera envoyé") in too_late
    wrong_key = render_outcome(CancelOutcome("300", code=10), lang)
    assert "MAILPARTNER_API_KEY" in wrong_key
    timeout = render_outcome(CancelOutcome("300", failure=FailureKind.TIMEOUT), lang)
    assert ("unknown" if lang == "en" else "inconnu") in timeout
    assert ("already cancelled" if lang == "en" else "déjà annulé") in timeout  # why asking again is safe


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_unknown_code_quotes_mailpartner(lang: str) -> None:
    text = render_outcome(CancelOutcome("300", code=11, message="Crédits insuffisants <b>"), lang)
    assert "11" in text and "Crédits insuffisants &lt;b&gt;" in text and "`code 11`" in text


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("kind", list(FailureKind))
def test_every_failure_kind_in_both_languages(lang: str, kind: FailureKind) -> None:
    text = render_outcome(CancelOutcome("300", failure=kind, http_status=502), lang)
    assert "`300`" in text and "code" not in text.split("`300`")[1].split()[0]
    assert text.startswith(OUTCOME_EMOJI[kind])
    if kind in (FailureKind.HTTP_ERROR, FailureKind.MALFORMED):
        assert "HTTP 502" in text


def test_confirmed_on_retry_is_said() -> None:
    text = render_outcome(CancelOutcome("300", code=5, confirmed_on_retry=True), "en")
    assert "retry" in text


def test_every_answer_has_words_in_every_language_and_every_key_in_both() -> None:
    en, fr = LANGUAGES["en"], LANGUAGES["fr"]
    assert set(en.OUTCOMES) == set(fr.OUTCOMES) == set(ANSWERS) == set(OUTCOME_EMOJI)
    assert set(en.UI) == set(fr.UI)
    for key in ANSWERS:
        (what_en, next_en), (what_fr, next_fr) = en.OUTCOMES[key], fr.OUTCOMES[key]
        assert what_en and what_fr and what_en != what_fr, key
        assert bool(next_en) == bool(next_fr), key


def test_outcome_message_names_people_and_mailpartner() -> None:
    message = outcome_message(
        [CancelOutcome("300", code=200, message="L'envoi du mail a été annulé.")],
        confirmer="U0BOB00000",
        requester="U0ALICE000",
        lang="en",
        sandbox=False,
    )
    text = blocks_text(message)
    assert "Confirmed by <@U0BOB00000>" in text and "requested by <@U0ALICE000>" in text
    assert "L'envoi du mail a été annulé." in text and "SANDBOX" not in text


def test_sandbox_outcome_is_marked() -> None:
    message = outcome_message([CancelOutcome("300", code=200)], confirmer="U1", requester="U1", lang="fr", sandbox=True)
    assert message["text"].startswith("[BAC À SABLE]") and "BAC À SABLE" in blocks_text(message)


def test_bulk_summary_fits_slack_limits() -> None:
    outcomes = [CancelOutcome(f"{'x' * 60}{i:02d}", code=c) for i, c in enumerate([200, 6, 4, 7, 10] * 5)]
    message = outcome_message(outcomes, confirmer="U1", requester="U1", lang="en", sandbox=True)
    assert len(message["blocks"]) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if b["type"] == "section")
    assert "5 cancelled · 5 too late · 5 already sent · 5 not found · 5 failed" in blocks_text(message)


def test_prompt_buttons() -> None:
    message = prompt_message(("300",), "U1", "{}", lang="fr", ttl=900, second_person=False, sandbox=False)
    found = buttons(message)
    assert found["cancel_mail_confirm"]["style"] == "danger"
    assert found["cancel_mail_confirm"]["text"]["text"] == "Annuler l'envoi"
    assert "15 min" in blocks_text(message)


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("reason", list(UsageReason))
def test_usage_says_what_is_wrong_in_a_line_and_where_the_rest_is(lang: str, reason: UsageReason) -> None:
    text = usage_text(reason, "<x>", lang=lang)
    assert "<x>" not in text
    if reason in WHOLE_USAGE:  # `help`, or nothing to act on: the whole usage
        assert "`/cancel-mail <id>`" in text
    else:  # a typo costs one line to read
        assert "`/cancel-mail <id>`" not in text and "\n" not in text and len(text) < 300, text
        assert {"en": "`/cancel-mail help`", "fr": "`/cancel-mail aide`"}[lang] in text


def test_escape() -> None:
    assert escape("<@U1> & <!channel>") == "&lt;@U1&gt; &amp; &lt;!channel&gt;"


@pytest.mark.parametrize(("lang", "label"), [("en", "*Reason:*"), ("fr", "*Motif :*")])
def test_reason_is_shown_escaped_in_prompt_and_outcome(lang: str, label: str) -> None:
    reason = "wrong <!channel> & <@U0BOSS0000>"
    shown = f"{label} wrong &lt;!channel&gt; &amp; &lt;@U0BOSS0000&gt;"
    prompt = prompt_message(
        ("300",), "U0A", "{}", lang=lang, ttl=900, second_person=False, sandbox=False, reason=reason
    )
    assert shown in json.dumps(prompt, ensure_ascii=False) and "<!channel>" not in json.dumps(prompt)
    outcome = outcome_message(
        [CancelOutcome("300", code=200)], confirmer="U0B", requester="U0A", lang=lang, sandbox=False, reason=reason
    )
    assert shown in json.dumps(outcome, ensure_ascii=False) and "<!channel>" not in json.dumps(outcome)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_workflow_prompt_names_the_requester(lang: str) -> None:
    prompt = prompt_message(
        ("300",), "U0A", "{}", lang=lang, ttl=900, second_person=False, sandbox=False, workflow=True
    )
    assert "<@U0A>" in prompt["blocks"][0]["text"]["text"]
