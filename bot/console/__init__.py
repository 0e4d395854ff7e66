"""The local console: the bot's real listeners played in a terminal (console.py), against a loopback
stand-in for Slack (local_slack.py) fed with requests built as Slack sends them (wire.py)."""
