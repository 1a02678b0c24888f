"""Named crash points for fault-injection tests.

Operations that must survive a crash (erasure, index saves, ingestion) call :func:`crash_point`
with a stable name at each moment where a ``kill -9`` would leave a distinct state on disk. In
normal runs the call is one environment lookup. A test sets ``VISIONLAKE_CRASH_AT`` to a name (or a
comma-separated list) in a child process; that process then dies with SIGKILL exactly there, as
if the machine lost power, so the test can rerun the command and check what the next run repairs.

``VISIONLAKE_CRASH_MODE=raise`` raises :class:`SimulatedCrash` instead (for in-process tests that
only need the code after the point not to run; a real kill is the stronger test).
"""

from __future__ import annotations

import os
import signal

#: Environment variable naming the crash point(s) to fire.
ENV = "VISIONLAKE_CRASH_AT"
#: ``kill`` (default) or ``raise``.
MODE_ENV = "VISIONLAKE_CRASH_MODE"


class SimulatedCrash(BaseException):
    """Raised at a crash point in ``raise`` mode; a BaseException so ``except Exception`` cannot hide it."""


def crash_point(name: str) -> None:
    """Die here (SIGKILL, no cleanup, no flush) when ``VISIONLAKE_CRASH_AT`` names this point."""
    wanted = os.environ.get(ENV)
    if not wanted or name not in {w.strip() for w in wanted.split(",")}:
        return
    if os.environ.get(MODE_ENV, "kill") == "raise":
        raise SimulatedCrash(name)
    os.kill(os.getpid(), signal.SIGKILL)
