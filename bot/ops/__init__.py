"""Running the bot: the HTTP server and Socket Mode with /healthz and the drain (server.py), and
`python -m bot check` (check.py)."""
