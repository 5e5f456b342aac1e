"""The error types that rdls raises for problems a user can fix."""

import functools


class InputError(ValueError):
    """Bad input: the message names the file, the row or key, the column and the fix."""


class QCFailure(Exception):
    """One item (a subject's MRI, a slide) that cannot be processed.

    Where the config allows exclusions (``qc.allow_exclusions``), the item is left out and
    recorded in ``results/qc/exclusions.tsv`` with ``step`` and ``reason``; otherwise the
    run stops with the reason. The reason names the file and says what to do.
    """

    def __init__(self, reason: str, *, step: str):
        super().__init__(reason)
        self.reason = reason
        self.step = step

    def __reduce__(self):
        # Raised in worker processes (slide tiles): pickling must keep the keyword-only step.
        return (functools.partial(QCFailure, step=self.step), (self.reason,))


def some(items, *, shown: int = 5, quote: bool = True) -> str:
    """The first few of ``items`` for an error message, then "and N more"."""
    items = [str(item) for item in items]
    text = ", ".join(repr(item) if quote else item for item in items[:shown])
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")
