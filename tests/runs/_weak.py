"""The command runner as it was before the supervisor (PDEATHSIG on the direct child, communicate() holding all
output): used only by the negative controls, to prove that the process-tree and memory checks can fail."""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
from typing import Any


def _die_with_parent() -> None:  # pragma: no cover - runs between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def run_command(
    command: str, *, shell: bool, timeout: float | None, env: dict[str, str], cwd: Any, **_: Any
) -> dict[str, Any]:
    argv: str | list[str] = command if shell else shlex.split(command)
    proc = subprocess.Popen(
        argv,
        shell=shell,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        error = ""
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        error = f"timed out after {timeout:g}s"
    return {
        "command": command,
        "success": proc.returncode == 0 and not error,
        "exit_code": proc.returncode,
        "stdout": out[-(1 << 20) :].decode("utf-8", "replace"),
        "stderr": err[-(1 << 20) :].decode("utf-8", "replace"),
        "duration_ms": 0,
        **({"error": error} if error else {}),
    }
