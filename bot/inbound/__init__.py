"""The ways in from Slack: the listeners (command, mention, shortcuts and their form, the Workflow Builder
step, the buttons), who may act (access.py, as listener middleware) and the shape check every request
passes before Bolt reads it (shape.py)."""
