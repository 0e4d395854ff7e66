"""Slack listeners: every way in (`/cancel-mail`, `@bot cancel`, a direct message, both shortcuts and their
form, the Workflow Builder step) and the confirm and keep buttons they all lead to, a module each.

    request (command · mention · form · workflow) → prompt → confirm / keep → CancelService → outcome

Every listener is a coroutine on the event loop (Bolt's AsyncApp): it acks from memory (parse, check,
build blocks) and hands the rest to `CancelService.spawn()`, a coroutine the service keeps for the drain,
so a slow MailPartner, Slack Web API or store never delays an ack. Commands, access control and rendering
live in their own modules; these only wire them to Slack's payloads.

A new way in is a module here with a `Listener` subclass and a `register(app, deps)`, added to `WAYS_IN`.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.inbound.listeners import actions, commands, events, shortcuts, workflow
from bot.inbound.listeners.base import COMMAND, Click, Listener, ListenerDeps
from bot.inbound.shape import RefuseMalformed

__all__ = ["COMMAND", "Click", "ListenerDeps", "register"]

# Bolt tries each listener's matchers in this order, on every request: the common requests first (a confirm
# click used to meet six others' matchers, each a call with its kwargs built).
WAYS_IN = (commands, actions, events, workflow, shortcuts)


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    shared = Listener(deps)
    app.use(RefuseMalformed())  # before any listener's matcher reads the body (Socket Mode's only check)
    app.use(shared.access_ready)  # the checks below read the user groups from memory, on the loop
    for way_in in WAYS_IN:
        way_in.register(app, deps)
    app.error(shared.on_error)
