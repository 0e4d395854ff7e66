"""What a request is, whichever way it came in: the grammar of ids and reasons (commands.py) and the
ticket a prompt's buttons carry, with the workflow run a click belongs to (ticket.py)."""
