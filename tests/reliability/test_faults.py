"""The crash-point helper itself: inert by default, SIGKILL exactly at the named point and count."""

from __future__ import annotations

import signal
import subprocess
import sys

from visionlake import faults

SCRIPT = (
    "from visionlake.faults import crash_point\n"
    "for i in range(5):\n"
    "    crash_point('a.b'); print(i, flush=True)\n"
)


def _run(env_value: str | None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    env.pop(faults.ENV, None)
    if env_value is not None:
        env[faults.ENV] = env_value
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)


def test_crash_point_is_inert_without_the_variable() -> None:
    r = _run(None)
    assert r.returncode == 0 and r.stdout.split() == ["0", "1", "2", "3", "4"]


def test_crash_point_kills_with_sigkill_at_the_nth_hit() -> None:
    r = _run("other, a.b:3")
    assert r.returncode == -signal.SIGKILL
    assert r.stdout.split() == ["0", "1"]  # hits 1 and 2 pass, the third dies before printing


def test_unknown_names_do_not_crash(monkeypatch) -> None:
    monkeypatch.setenv(faults.ENV, "not.a.point")
    faults.crash_point("a.b")  # still alive
    assert faults.armed()
