"""The Slack surface: every way in (command, mention, shortcuts and form, Workflow Builder step), the
words and Block Kit people see, who may act, and how messages reach Slack under its rate limits."""
