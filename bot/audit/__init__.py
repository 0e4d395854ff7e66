"""What the bot records: the audit trail (trail.py: a log line and a history row per action), the
Prometheus metrics (metrics.py), and the log format with secrets masked (logs.py)."""
