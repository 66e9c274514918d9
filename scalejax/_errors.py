"""The exceptions scalejax raises for bad input, each carrying one readable line."""

from __future__ import annotations

from collections.abc import Sequence


class ScalejaxError(ValueError):
    """Base class of every error scalejax raises for bad input or a failed fit."""


class DataError(ScalejaxError):
    """The data cannot be used as given (missing column, NaN, non-positive...)."""


class LawError(ScalejaxError):
    """A law is unknown, malformed, or does not match the data."""


class FitError(ScalejaxError):
    """No start of the solver reached a finite, converged optimum."""


def describe_rows(labels: Sequence, *, row_name: str = "row", limit: int = 8) -> str:
    """`rows 4, 9, 17` (or `rows 4, 9, ... and 12 more`) for an error message."""
    labels = [str(label) for label in labels]
    noun = row_name if len(labels) == 1 else row_name + "s"
    if len(labels) <= limit:
        return f"{noun} {', '.join(labels)}"
    return f"{noun} {', '.join(labels[:limit])} and {len(labels) - limit} more"
