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


class MissingDependency(ScalejaxError, ImportError):
    """An optional package that a feature needs is not installed (the message says how to install it)."""


def describe_rows(labels: Sequence, *, row_name: str = "row", limit: int = 8) -> str:
    """`rows 4, 9, 17` (or `rows 4, 9, ... and 12 more`) for an error message."""
    labels = [_label(label) for label in labels]
    noun = row_name if len(labels) == 1 else row_name + "s"
    if len(labels) <= limit:
        return f"{noun} {', '.join(labels)}"
    return f"{noun} {', '.join(labels[:limit])} and {len(labels) - limit} more"


def _label(label) -> str:
    """A row label as text that keeps a message on one line: quoted when it is blank, has a comma or a control character."""
    text = str(label)
    if text and text.isprintable() and text == text.strip() and "," not in text:
        return text
    return repr(text)
