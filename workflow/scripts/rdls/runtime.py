"""Helpers that rule scripts share: logging to the rule's log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def log_to_file(path: str | Path, *, level: int = logging.INFO) -> logging.Logger:
    """Send log records and uncaught exceptions of a rule script to the rule's log.

    Snakemake keeps a job's log even when the job fails, so the traceback of a failing
    script ends up next to its progress messages.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)

    def _log_uncaught(kind, value, traceback):
        root.error("uncaught exception", exc_info=(kind, value, traceback))
        sys.__excepthook__(kind, value, traceback)

    sys.excepthook = _log_uncaught
    return logging.getLogger("rdls")
