"""The way out to Slack: replies.py says where a message goes, ledger.py keeps it owed in the store until
Slack takes it, outbox.py paces it under Slack's rate limits and outages, webapi.py is Slack's HTTP."""
