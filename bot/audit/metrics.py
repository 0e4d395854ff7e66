"""Prometheus metrics: what an on-call dashboard needs to see the bot working, without reading logs.

    cancel_mail_requests_total{via}                  command, mention, shortcut, workflow, dm
    cancel_mail_refusals_total{reason}               not_allowed_user, not_allowed_channel, own_request
    cancel_mail_outcomes_total{result,account}       one per MailPartner answer or failure (answers.py), by account
    cancel_mail_recovered_total                      cancels finished after their process died
    cancel_mail_unrecorded_claims_total              confirms the store did not record: this process's guard only
    cancel_mail_busy_total                           confirms refused: as many mails under way as one process takes
    cancel_mail_slack_post_failures_total{method}    Slack messages that failed for good (every way, every retry)
    cancel_mail_slack_owed                           messages owed to people, not yet taken by Slack (the store's)
    cancel_mail_slack_delivery_seconds               a message owed → Slack took it
    cancel_mail_mailpartner_seconds{call}            one MailPartner HTTP attempt: message-cancel, bulk-status, me
    cancel_mail_outcome_seconds                      confirm click to outcome posted
    cancel_mail_in_flight                            mails whose cancel is under way

Requests, refusals, outcomes and recoveries are counted from the audit trail, so a count and its audit
line can never disagree. Served on `METRICS_PORT`, never on the Slack port, by the one process that serves
Slack. prometheus_client is imported where it is used: the console and the CLI never load it.
"""

from __future__ import annotations

from typing import Any

from bot.mailpartner.answers import RESULTS, FailureKind, meaning
from bot.mailpartner.client import CALLS
from bot.requests.kinds import Refusal, Via

VIA = tuple(v.value for v in Via if v is not Via.CLI)  # the Slack bot's ways in
REFUSALS = tuple(r.value for r in Refusal)
SLACK_METHODS = (  # replies.py's first ways out
    "response_url",
    "chat.postMessage",
    "chat.postEphemeral",
    "chat.update",
    "functions.completeSuccess",
    "functions.completeError",
)


def result_label(code: int | None, failure: str | None) -> str:
    """The `result` label of an audit outcome line (answers.py decides it)."""
    return meaning(code, FailureKind(failure) if failure else None).result


class Metrics:
    def __init__(self, accounts: tuple[str, ...] = ("default",)) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        # Its own registry: tests and several bots in one process never collide on names.
        self.registry = CollectorRegistry(auto_describe=True)
        kw: dict[str, Any] = {"registry": self.registry}
        self.requests = Counter("cancel_mail_requests", "Cancel requests, by way in", ["via"], **kw)
        self.refusals = Counter("cancel_mail_refusals", "Requests and clicks refused, by rule", ["reason"], **kw)
        self.outcomes = Counter(
            "cancel_mail_outcomes", "Outcomes of one mail's cancel, by result and account", ["result", "account"], **kw
        )
        self.recovered = Counter("cancel_mail_recovered", "Cancels finished after their process died", **kw)
        self.busy = Counter("cancel_mail_busy", "Confirms refused: as many mails under way as one process takes", **kw)
        self.unrecorded_claims = Counter(
            "cancel_mail_unrecorded_claims",
            "Confirms whose claim the store did not record: other replicas could not see them",
            **kw,
        )
        self.slack_failures = Counter(
            "cancel_mail_slack_post_failures", "Slack calls that failed for good, by method", ["method"], **kw
        )
        self.mailpartner_seconds = Histogram(
            "cancel_mail_mailpartner_seconds",
            "One MailPartner HTTP attempt, by call",
            ["call"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
            **kw,
        )
        self.outcome_seconds = Histogram(
            "cancel_mail_outcome_seconds",
            "Confirm click to outcome posted",
            buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300),
            **kw,
        )
        self.slack_owed = Gauge("cancel_mail_slack_owed", "Messages owed to people, not yet taken by Slack", **kw)
        self.slack_delivery_seconds = Histogram(
            "cancel_mail_slack_delivery_seconds",
            "A message owed to a person until Slack took it",
            buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400),
            **kw,
        )
        self.in_flight = Gauge("cancel_mail_in_flight", "Mails whose cancel is under way", **kw)
        # Every series exists from the start: a dashboard's rate() needs a zero before the first event.
        for via in VIA:
            self.requests.labels(via)
        for reason in REFUSALS:
            self.refusals.labels(reason)
        for result in RESULTS:
            for account in accounts:
                self.outcomes.labels(result, account)
        for call in CALLS:
            self.mailpartner_seconds.labels(call)
        for method in SLACK_METHODS:  # so that increase() sees the first failure, not an absent series
            self.slack_failures.labels(method)

    def mailpartner_attempt(self, call: str, seconds: float) -> None:
        """One HTTP attempt at MailPartner: a cancel's latency panel reads `call="message-cancel"` alone."""
        self.mailpartner_seconds.labels(call).observe(seconds)

    def observe(self, line: dict[str, Any]) -> None:
        """Count an audit line."""
        action = line.get("action")
        if action == "request" and line.get("via") in VIA:
            self.requests.labels(line["via"]).inc()
        elif action == "refusal" and line.get("refusal"):
            self.refusals.labels(line["refusal"]).inc()
        elif action == "outcome" and line.get("via") != "cli":
            account = str(line.get("account") or "default")
            self.outcomes.labels(result_label(line.get("code"), line.get("failure")), account).inc()
        elif action == "recovery":
            self.recovered.inc()
        elif action == "confirm" and line.get("claim") == "unrecorded":
            self.unrecorded_claims.inc()
        elif action == "busy":
            self.busy.inc()


def serve(port: int, registry: Any) -> None:
    """Serve /metrics on all interfaces at `port`, in a thread of this process."""
    from prometheus_client import start_http_server

    start_http_server(port, registry=registry)
