"""Running the bot: the HTTP server and Socket Mode, the audit trail, logs, metrics, `check`, and the
sweeper that finishes what a dead process left."""
