"""The cancels themselves: engine.py runs a confirmed cancel from claim to owed outcome, workflow.py ends
each Workflow Builder run exactly once, recovery.py finishes what a stopped process left."""
