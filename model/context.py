"""What an algorithm's train() gets from the job besides data and hyperparameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass
class TrainingContext:
    """work_dir: scratch space; checkpoint_dir: where to save/resume (None: no checkpoints);
    threads: CPU threads to use; log: one line of progress or metrics;
    stop_requested: true once the job was asked to stop (SIGTERM)."""

    work_dir: Path
    checkpoint_dir: Path | None = None
    threads: int = 1
    log: Callable[[str], None] = _print
    stop_requested: Callable[[], bool] = field(default=lambda: False)


class TrainingInterrupted(Exception):
    """Raised by train() after it saved a checkpoint because the job was asked to stop."""
