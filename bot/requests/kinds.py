"""The names a request's audit line gives it, which the metrics count by: the way it came in, and why
it was refused."""

from __future__ import annotations

from enum import Enum


class Via(Enum):
    COMMAND = "command"
    MENTION = "mention"
    SHORTCUT = "shortcut"
    WORKFLOW = "workflow"
    DIRECT_MESSAGE = "dm"
    CLI = "cli"  # break-glass cancels: audited, not counted (the metrics are the Slack bot's)


class Refusal(Enum):
    NOT_ALLOWED_USER = "not_allowed_user"
    GROUPS_UNREAD = "groups_unread"  # the allowed user groups' members not read from Slack yet: nobody can tell
    NOT_ALLOWED_CHANNEL = "not_allowed_channel"
    OWN_REQUEST = "own_request"
    PRIVATE_CONVERSATION = "private_conversation"  # a direct message under the two-person rule: no one else sees it
