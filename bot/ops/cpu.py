"""One CPU for the process that serves Slack (CANCEL_MAIL_ONE_CPU, on by default).

Its hundreds of threads share one interpreter lock. Spread over several cores, every hand-over of that
lock wakes a thread on another core: measured on two cores, a burst of 500 clicks made four times the
context switches and cost 8 to 9 ms of CPU a click, against 5 to 6 ms with the process kept to one core;
a steady run at 32 in flight cost 16 to 20 ms a cancel, against 12. One core is all the process can use
for Python at a time anyway.

The CPU is the one the kernel runs the process on when it starts, so that replicas on one host spread as
the kernel spreads them. Kept there, the kernel cannot move the process off a core that a busier
neighbour shares: CANCEL_MAIL_ONE_CPU=false leaves it free to.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def keep_to_one_cpu() -> int | None:
    """Keep every thread of this process, and so every thread they start, on the CPU it runs on now.
    Returns that CPU; None when there is no choice to make (one CPU allowed) or no way to (not Linux)."""
    try:
        allowed = os.sched_getaffinity(0)
        now = _current_cpu()
    except (AttributeError, OSError, ValueError, IndexError):  # not Linux, or no /proc
        return None
    if len(allowed) < 2:
        return None
    cpu = now if now in allowed else min(allowed)
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {cpu})
        except (ProcessLookupError, ValueError):  # the thread ended meanwhile
            continue
    log.info("keeping to CPU %d of the %d allowed (CANCEL_MAIL_ONE_CPU=false to leave it free)", cpu, len(allowed))
    return cpu


def _current_cpu() -> int:
    """The CPU this thread last ran on: field 39 of its stat line, counted after the name in brackets."""
    fields = Path("/proc/thread-self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[36])
