"""Every word the bot says in English: outcomes by MailPartner answer (answers.py's keys), then the rest."""

from __future__ import annotations

from bot.mailpartner.answers import UNKNOWN_CODE, FailureKind

_RETRY_SAFE = (
    "Asking again is safe: if the first request went through, MailPartner answers that it is already cancelled."
)

# What happened to the mail, and what to do next: (what, next step).
OUTCOMES: dict[int | FailureKind | str, tuple[str, str]] = {
    200: (
        "Mail `{id}` is cancelled: it will not be sent.",
        "",
    ),
    5: (
        "Mail `{id}` was already cancelled: it will not be sent.",
        "",
    ),
    4: (
        "Mail `{id}` was not found at MailPartner; nothing was cancelled.",
        "Check the id: it is the `messageId` MailPartner returned when the mail was scheduled.",
    ),
    6: (
        "Too late: mail `{id}` goes out in under 5 minutes and can no longer be cancelled.",
        "The mail will be sent. Warn the people concerned or prepare a follow-up.",
    ),
    7: (
        "Mail `{id}` was already sent; it cannot be cancelled.",
        "Prepare a follow-up if needed.",
    ),
    10: (
        "MailPartner refused the bot's API key; mail `{id}` was not cancelled.",
        "An administrator must fix `MAILPARTNER_API_KEY`, then ask again.",
    ),
    1: (
        "MailPartner says the API key is missing; mail `{id}` was not cancelled.",
        "An administrator must set `MAILPARTNER_API_KEY`, then ask again.",
    ),
    3: (
        "MailPartner says the mail id is missing; mail `{id}` was not cancelled.",
        "This is a bug in the bot: please report it, and cancel from MailPartner's site meanwhile.",
    ),
    UNKNOWN_CODE: (
        "MailPartner answered with an unexpected code {code} for mail `{id}`: “{mp_message}”.",
        "The mail is probably not cancelled: check it on MailPartner's site.",
    ),
    FailureKind.TIMEOUT: (
        "MailPartner did not answer in time for mail `{id}`: the result is unknown.",
        _RETRY_SAFE,
    ),
    FailureKind.CONNECTION: (
        "Could not reach MailPartner for mail `{id}`; it was not cancelled.",
        "Try again in a minute. If it persists, check MailPartner's status.",
    ),
    FailureKind.NAME_UNRESOLVED: (
        "MailPartner's address does not resolve (DNS) for mail `{id}`; it was not cancelled.",
        "Check MAILPARTNER_BASE_URL and this machine's DNS (`python -m bot check`); asking again will not help.",
    ),
    FailureKind.CERTIFICATE: (
        "MailPartner's certificate was refused for mail `{id}`; it was not cancelled.",
        "Check SSL_CERT_FILE (a proxy's own authority?) with `python -m bot check`; asking again will not help.",
    ),
    FailureKind.HTTP_ERROR: (
        "MailPartner failed with HTTP {status} for mail `{id}`; it was probably not cancelled.",
        _RETRY_SAFE,
    ),
    FailureKind.MALFORMED: (
        "MailPartner sent an answer the bot cannot read (HTTP {status}) for mail `{id}`: the result is unknown.",
        _RETRY_SAFE,
    ),
}

UI: dict[str, str] = {
    "sandbox_mark": "[SANDBOX]",
    "sandbox": ":test_tube: *SANDBOX* — no real mail is affected.",
    "prompt": "Cancel scheduled mail {ids} at MailPartner? This cannot be undone.",
    "prompt_many": "Cancel scheduled mails {ids} at MailPartner? This cannot be undone.",
    "prompt_second": "<@{requester}> asks to cancel scheduled mail {ids} at MailPartner. *A second person* who is "
    "allowed must confirm.",
    "prompt_second_many": "<@{requester}> asks to cancel scheduled mails {ids} at MailPartner. *A second person* "
    "who is allowed must confirm.",
    "prompt_workflow": "<@{requester}> asks, through a workflow, to cancel scheduled mail {ids} at MailPartner. "
    "This cannot be undone.",
    "prompt_workflow_many": "<@{requester}> asks, through a workflow, to cancel scheduled mails {ids} at "
    "MailPartner. This cannot be undone.",
    "prompt_expiry": "Requested by <@{requester}> · expires in {minutes} min",
    "reason": "*Reason:* {reason}",
    "confirm": "Cancel the mail",
    "confirm_many": "Cancel {n} mails",
    "keep": "Keep it",
    "confirmed": ":ballot_box_with_check: <@{user}> confirmed cancelling {ids}; the outcome follows below.",
    "kept": ":ok_hand: <@{user}> kept {ids}; nothing was cancelled.",
    "expired": ":stopwatch: This request expired before it was confirmed; nothing was cancelled. Ask again with "
    "`/cancel-mail {ids_plain}`.",
    "by": "Confirmed by <@{confirmer}>",
    "requested": "requested by <@{requester}>",
    "mp_said": "MailPartner: “{mp_message}”",
    "on_retry": "confirmed on a retry after MailPartner's first silence",
    "recovered": ":recycle: Recovered after an interruption: the bot restarted mid-cancel and asked MailPartner again",
    "summary": "Outcome of cancelling {n} mails:",
    "totals": "*Totals:* {cancelled} cancelled · {too_late} too late · {already_sent} already sent · {not_found} "
    "not found · {failed} failed",
    "usage": "Usage: `/cancel-mail <id>` (up to {max} ids separated by spaces; `ACCOUNT:ID` such as "
    "`brand-b:301` names the MailPartner account; then ` -- why` to give a reason), or mention me in a thread: "
    "`@{bot} cancel <id> -- why`. `/cancel-mail history` shows what happened in this conversation, "
    "`/cancel-mail history <id>` everything about one mail. An id is 1–64 letters, digits, `-` or `_`, not "
    "starting with `-` — the `messageId` MailPartner returned when the mail was scheduled. The reason is up to "
    "{max_reason} characters. You will be asked to confirm.",
    "unknown_account": "`{account}` is not one of the bot's MailPartner accounts ({accounts}); nothing was "
    "asked. Name the account before the id, as in `{example}`.",
    "account_needed": "Whose mail is `{offending}`? Several MailPartner accounts know that id, or none does; "
    "nothing was asked. Name the account before the id, as in `{example}` (accounts: {accounts}).",
    "looking_up": ":mag: Looking up {ids} at MailPartner before you confirm…",
    "preview_recipients": "{ids}: {total} recipients; nothing delivered yet.",
    "preview_partly": "{ids}: {total} recipients; already delivered to {delivered} of them.",
    "preview_gone": ":outbox_tray: {ids} has gone out: delivered to all {total} recipients; it cannot be cancelled.",
    "preview_empty": "{ids}: MailPartner lists no recipients for it yet.",
    "preview_no_report": "{ids}: MailPartner has no delivery report for it yet; normal for a mail not yet sent; "
    "check the id.",
    "preview_silent": "{ids}: MailPartner did not say in time what it is; check the id.",
    "preview_unreachable": "{ids}: MailPartner could not be reached to say what it is.",
    "preview_name_unresolved": "{ids}: MailPartner's address does not resolve (DNS): check MAILPARTNER_BASE_URL.",
    "preview_certificate_refused": "{ids}: MailPartner's certificate was refused: check SSL_CERT_FILE.",
    "preview_refused": "{ids}: MailPartner refused the account's key (code {code}); the cancel will likely fail too.",
    "preview_odd": "{ids}: MailPartner answered code {code} about it.",
    "preview_total": "*{total} recipients in all.*",
    "preview_to": "To {addresses}{more}.",
    "preview_more": " and {n} more",
    "preview_cancelled": ":no_entry_sign: {ids} is already cancelled: it will not be sent.",
    "nothing_to_cancel": ":outbox_tray: Nothing left to cancel: {ids} has already gone out to every recipient.",
    "nothing_to_cancel_cancelled": ":no_entry_sign: Nothing left to cancel: {ids} is already cancelled and will not "
    "be sent.",
    "more_help": "The rest: `/cancel-mail help`.",
    "dm_more_help": "Write `help` for the rest.",
    "bad_id": "`{offending}` is not a valid mail id.",
    "id_too_long": "`{offending}` is too long for a mail id: a mail id is {limit} characters at most, its account "
    "name included.",
    "no_id": "Which mail? Give its id.",
    "too_many": "{offending} ids is too many at once.",
    "unknown_verb": "I don't know `{offending}`.",
    "verb_missing": "Say `cancel` before the ids: `@{bot} cancel {offending}`.",
    "reason_unmarked": "Words that are not mail ids follow the ids. If they are the reason, put ` -- ` before them: "
    "`{offending}`.",
    "not_id_like": "`{offending}` does not look like mail ids (they have digits, like `302`). The reason has a "
    "field of its own.",
    "reason_required": "Say why: a reason is required here, after ` -- `.",
    "reason_too_long": "The reason is {offending} characters; keep it to {max_reason}.",
    "too_long": "These ids and this reason do not fit in one request; send fewer ids or a shorter reason.",
    "history_args": "History takes one mail id at most: `/cancel-mail history` or `/cancel-mail history 300`.",
    "not_allowed_user": ":no_entry: You are not allowed to cancel mails with this bot; nothing was done. Ask "
    "someone on the on-call list.",
    "groups_unread": ":hourglass: Slack has not yet said who is in the user groups allowed to cancel, so I cannot "
    "tell whether you are; nothing was done. Try again in a minute.",
    "not_allowed_channel": ":no_entry: Mails cannot be cancelled from this channel; nothing was done. Use an "
    "on-call channel.",
    "own_request": ":busts_in_silhouette: A second person must confirm your own request; you can still withdraw it "
    "with “Keep it”.",
    "private_conversation": ":busts_in_silhouette: A second person must confirm every cancel here, and nobody else "
    "sees this conversation: ask in an on-call channel, with `/cancel-mail {ids_plain}` or a mention. Nothing was "
    "done.",
    "dm_usage": "Write to me here: `cancel <id> [<id> …] -- why` to cancel scheduled mails (you confirm with a "
    "button first), `history <id>` for what happened to a mail, `help` for this. `ACCOUNT:ID` such as `brand-b:301` "
    "names the MailPartner account.",
    "home_title": "Cancel scheduled mails",
    "home_intro": "I cancel a scheduled MailPartner mail before it goes out, after a confirmation, and tell the "
    "channel what happened. Ask with `/cancel-mail <id>`, a mention, the button below, or a direct message here.",
    "home_sandbox": ":test_tube: *SANDBOX*: this bot works on the built-in MailPartner simulator; no real mail is "
    "affected.",
    "home_access_unread": ":hourglass: Slack has not yet said who is in the user groups allowed to cancel; this tab "
    "says whether you may once it has.",
    "home_may": ":white_check_mark: You may cancel scheduled mails with this bot.",
    "home_may_channels": ":white_check_mark: You may cancel scheduled mails with this bot, in {channels}.",
    "home_may_not": ":no_entry: You may not cancel mails with this bot: {rule}. Ask one of them, or whoever runs "
    "the bot, to do it or to add you.",
    "home_rule_users": "only {people} may",
    "home_rule_groups": "only members of {groups} may",
    "home_rule_both": "only {people} and members of {groups} may",
    "home_open_form": "Cancel a scheduled mail",
    "home_under_way": "*Under way now:* {ids}",
    "home_recent": "*Your recent requests and confirmations*, newest first:",
    "home_recent_none": "You have not asked to cancel or confirmed a cancel yet.",
    "home_recent_more": "Showing your {limit} newest. One mail's whole story: `/cancel-mail history <id>`.",
    "home_history_unavailable": ":warning: Your history is unavailable right now: the bot's database does not "
    "answer. Cancels still work.",
    "home_accounts": "*MailPartner accounts*",
    "home_account_ok": ":white_check_mark: `{account}`: key accepted (@{user}), {credits} mail credits",
    "home_account_ok_no_credits": ":white_check_mark: `{account}`: key accepted (@{user})",
    "home_account_refused": ":closed_lock_with_key: `{account}`: MailPartner refuses the key (code {code}): "
    "cancels in it will fail until an administrator fixes it",
    "home_account_silent": ":hourglass: `{account}`: MailPartner did not answer just now",
    "home_account_odd": ":warning: `{account}`: MailPartner answered code {code}",
    "home_account_checking": ":mag: `{account}`: checking…",
    "home_problem_accounts": ":warning: *A MailPartner account is not working:* {accounts}. Cancels in it fail "
    "until its key is fixed.",
    "home_problem_store": ":warning: *The bot's database does not answer.* Cancels still work; history is unavailable.",
    "in_flight": ":hourglass_flowing_sand: A cancel of {ids} is already under way, confirmed by <@{user}>; its "
    "outcome will be posted here.",
    "busy": ":hourglass_flowing_sand: The bot is cancelling {count} mails right now, as many as it takes at once: "
    "nothing was done. Try again in a minute.",
    "shutting_down": ":construction: The bot is restarting and takes no new cancels; nothing was done. Ask again in "
    "a minute.",
    "error": ":warning: Something went wrong on the bot's side; nothing was cancelled. Ask again, and tell an "
    "administrator if it persists.",
    "audit_copy": "{user} confirmed a cancel in {channel}{link}:\n{lines}",
    "stale": ":stopwatch: This button no longer works; nothing was done. Ask again.",
    "crashed": ":warning: The bot failed while cancelling {ids}: MailPartner may or may not have cancelled it. "
    "`/cancel-mail history {ids_plain}` shows what is on record; asking again is safe (a cancel that went "
    "through answers “already cancelled”).",
    "history_mail": "*History of mail `{mail}`*, newest first:",
    "history_here": "*Cancel history in this conversation*, newest first:",
    "history_none_mail": "Nothing is recorded about mail `{mail}`.",
    "history_none_here": "Nothing is recorded in this conversation yet.",
    "history_mine": "*Your cancel history*, from every conversation, newest first:",
    "history_none_mine": "You have not asked to cancel or confirmed a cancel yet.",
    "history_more": "Showing the {limit} newest; there are more. See one mail's with `/cancel-mail history <id>`, "
    "or all of them where the bot runs: `python -m bot history --limit 200` (or `--since 7d`).",
    "history_unavailable": ":warning: The history is unavailable right now: the bot's database does not answer. "
    "Cancels still work, and the log keeps every action.",
    "h_request": "{actor} asked to cancel {ids} ({via})",
    "h_refusal": "{actor} was refused ({refusal}) for {ids}",
    "h_confirm": "{actor} confirmed the cancel of {ids}",
    "h_keep": "{actor} kept {ids}",
    "h_expiry": "{actor} confirmed {ids} after the prompt expired; nothing was cancelled",
    "h_busy": "{actor} confirmed {ids} while the bot was at its most cancels at once: nothing was done",
    "h_unrecorded": "the store did not answer: other replicas could not see this cancel",
    "h_duplicate": "{actor} confirmed {ids} while a cancel was under way",
    "h_post_failed": "the outcome for {ids} could not be posted to Slack",
    "h_recovery": "the bot took over the cancel of {ids} confirmed by {actor}, after an interruption",
    "h_step_end": "a workflow run ended: `{result}`",
    "h_dm": "direct message",
    "h_sandbox": ":test_tube: *SANDBOX*",
    "via_command": "command",
    "via_mention": "mention",
    "via_shortcut": "form",
    "via_workflow": "workflow",
    "via_dm": "direct message",
    "via_cli": "command line",
    "refusal_not_allowed_user": "not on the list of who may cancel",
    "refusal_groups_unread": "the user groups not yet read from Slack",
    "refusal_not_allowed_channel": "not a channel for cancels",
    "refusal_own_request": "their own request",
    "refusal_private_conversation": "a direct message under the two-person rule",
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
    "prompt_undelivered": ":warning: I could not post the confirmation in <#{channel}>; nothing was cancelled. "
    "Invite me there (`/invite @cancel-mail`) or use `/cancel-mail` in that channel.",
    "step_failed": "The bot failed while starting this step; nothing was cancelled. Run the workflow again, and "
    "tell an administrator if it persists.",
}
