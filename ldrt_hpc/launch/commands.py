"""Running a scheduler's command line: one place that turns its failure into words."""

from __future__ import annotations

import subprocess

ALREADY_ENDED = ("already completing or completed", "Job has finished", "Unknown Job Id", "Invalid job id specified")
"""Answers of scancel/qdel for a job that ended meanwhile: not an error when we wanted it ended."""


def run_stop_command(command: list[str]) -> str | None:
    """Run a cancel command; its complaint in one line when it failed (a job that already ended is no failure)."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`{command[0]}` could not run: {exc}"
    if proc.returncode == 0:
        return None
    text = " ".join((proc.stderr or proc.stdout).split())
    if any(phrase in text for phrase in ALREADY_ENDED):
        return None
    return f"`{' '.join(command[:3])} ...` failed (exit {proc.returncode}): {text[:300]}"
