"""Preprocessing of training curves (one row per checkpoint) into the tables a scaling-law fit takes.

Each helper takes a DataFrame with one row per checkpoint, a `by` column (or
columns) naming the run, and optionally an `order` column (step, tokens) to
sort the checkpoints of a run; it returns a new DataFrame and leaves the input
alone. They are exposed in `scalejax.datasets`, beside the loaders that apply
them to reproduce published protocols.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ._errors import DataError

__all__ = ["add_anchor", "final_rows", "last_k_mean", "moving_average", "skip_first"]


def _runs(frame: pd.DataFrame, by, order, columns: Sequence[str] = ()):
    """Validate the arguments; the frame sorted by run (stably) and then by `order` within each run."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a DataFrame of checkpoints, got {type(frame).__name__}")
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise DataError("by must name the column (or columns) that identify a run")
    for role, names in (("by", keys), ("order", [] if order is None else [order]), ("columns", list(columns))):
        missing = [c for c in names if c not in frame.columns]
        if missing:
            have = ", ".join(repr(str(c)) for c in frame.columns)
            raise DataError(f"column {missing[0]!r} (for {role}) not found; the table has columns {have}")
    if order is not None:
        frame = frame.sort_values([*keys, order], kind="stable")
    return frame, keys


def final_rows(frame: pd.DataFrame, *, by, order: str | None = None) -> pd.DataFrame:
    """Each run's final checkpoint (its last row, or the row of largest `order`).

    Args:
        frame: one row per checkpoint.
        by: the column (or columns) naming a run.
        order: the column that orders a run's checkpoints (step, tokens); the
            rows' order when None.

    Returns:
        One row per run, with the original index of that row.

    Example:
        >>> import pandas as pd, scalejax as sj
        >>> t = pd.DataFrame({"run": ["a", "a", "b"], "step": [1, 2, 1], "loss": [3.0, 2.5, 2.9]})
        >>> sj.datasets.final_rows(t, by="run", order="step")["loss"].tolist()
        [2.5, 2.9]
    """
    frame, keys = _runs(frame, by, order)
    return frame.groupby(keys, sort=False, dropna=False).tail(1)


def last_k_mean(frame: pd.DataFrame, *, by, k: int, columns: Sequence[str], order: str | None = None) -> pd.DataFrame:
    """One row per run: its final checkpoint, with `columns` replaced by their mean over the run's last `k` checkpoints.

    Averaging the last checkpoints damps evaluation noise in a run's final
    value; every other column (tokens, step, size) is the final checkpoint's.

    Args:
        frame: one row per checkpoint.
        by: the column (or columns) naming a run.
        k: how many final checkpoints to average (a run with fewer averages all of them).
        columns: the columns to average (e.g. a task loss).
        order: the column that orders a run's checkpoints; the rows' order when None.

    Returns:
        One row per run (the final checkpoint's index).

    Example:
        >>> import pandas as pd, scalejax as sj
        >>> t = pd.DataFrame({"run": ["a"] * 3, "step": [1, 2, 3], "bpb": [1.0, 0.9, 0.8]})
        >>> sj.datasets.last_k_mean(t, by="run", k=2, columns=["bpb"])["bpb"].round(6).tolist()
        [0.85]

    References:
        Bhagia et al. 2024, Establishing Task Scaling Laws via Compute-Efficient Model Ladders (step 1 averages
        the task loss of each run's last 5 checkpoints).
    """
    if not (isinstance(k, int | np.integer) and k >= 1):
        raise DataError(f"k must be a positive integer, got {k!r}")
    columns = [columns] if isinstance(columns, str) else list(columns)
    frame, keys = _runs(frame, by, order, columns)
    grouped = frame.groupby(keys, sort=False, dropna=False)
    out = grouped.tail(1).copy()
    means = grouped.tail(int(k)).groupby(keys, sort=False, dropna=False)[columns].mean()
    index = pd.MultiIndex.from_frame(out[keys]) if len(keys) > 1 else pd.Index(out[keys[0]])
    for c in columns:
        out[c] = means[c].reindex(index).to_numpy()
    return out


def skip_first(frame: pd.DataFrame, *, by, fraction: float, order: str | None = None) -> pd.DataFrame:
    """Drop the first `ceil(fraction * n)` checkpoints of each run of `n` checkpoints.

    Early checkpoints sit far from the regime being extrapolated (and before
    the learning rate has warmed up); published protocols drop a fraction.

    Args:
        frame: one row per checkpoint.
        by: the column (or columns) naming a run.
        fraction: in [0, 1): the share of each run's first checkpoints to drop.
        order: the column that orders a run's checkpoints; the rows' order when None.

    Returns:
        The remaining rows, in run order.

    References:
        Bhagia et al. 2024 (step 2 skips the first 10% of each run's checkpoints).
    """
    if not (isinstance(fraction, float | int | np.floating | np.integer) and 0 <= fraction < 1):
        raise DataError(f"fraction must be in [0, 1), got {fraction!r}")
    frame, keys = _runs(frame, by, order)
    position = frame.groupby(keys, sort=False, dropna=False).cumcount().to_numpy()
    size = frame.groupby(keys, sort=False, dropna=False)[keys[0]].transform("size").to_numpy()
    drop = np.array([math.ceil(fraction * n) for n in size], dtype=np.int64) if len(size) else np.zeros(0, np.int64)
    return frame[position >= drop]


def moving_average(
    frame: pd.DataFrame, *, by, window: int, columns: Sequence[str], order: str | None = None
) -> pd.DataFrame:
    """Trailing moving average of `columns` over `window` checkpoints, within each run.

    A run's first `window - 1` checkpoints average what precedes them (a
    shorter window), so no row is dropped.

    Args:
        frame: one row per checkpoint.
        by: the column (or columns) naming a run.
        window: the number of checkpoints averaged (1 leaves the values as they are).
        columns: the columns to smooth.
        order: the column that orders a run's checkpoints; the rows' order when None.

    Returns:
        The same rows with `columns` smoothed.

    References:
        Bhagia et al. 2024 (a 5-checkpoint moving average of task loss and accuracy).
    """
    if not (isinstance(window, int | np.integer) and window >= 1):
        raise DataError(f"window must be a positive integer, got {window!r}")
    columns = [columns] if isinstance(columns, str) else list(columns)
    frame, keys = _runs(frame, by, order, columns)
    out = frame.copy()
    grouped = frame.groupby(keys, sort=False, dropna=False)[columns]
    out[columns] = grouped.transform(lambda s: s.rolling(int(window), min_periods=1).mean())
    return out


def add_anchor(frame: pd.DataFrame, points: Mapping | Sequence[Mapping], **labels) -> pd.DataFrame:
    """Append anchor points: rows that pin a fit where the answer is known (e.g. accuracy 1 at task loss 0).

    Args:
        frame: the table to extend.
        points: one anchor (a dict of column -> value) or a list of them.
        labels: constant columns to set on the anchor rows (e.g. `run="anchor"`),
            so they can be told apart; the other columns are NaN there.

    Returns:
        `frame` with the anchors appended (a fresh RangeIndex when the input has one).

    Example:
        >>> import pandas as pd, scalejax as sj
        >>> t = pd.DataFrame({"bpb": [1.2, 0.9], "acc": [0.4, 0.6]})
        >>> sj.datasets.add_anchor(t, {"bpb": 0.0, "acc": 1.0})["acc"].tolist()
        [0.4, 0.6, 1.0]

    References:
        Bhagia et al. 2024 (step 2 adds the point (task loss 0, accuracy 1)).
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a DataFrame, got {type(frame).__name__}")
    rows = [dict(points)] if isinstance(points, Mapping) else [dict(p) for p in points]
    if not rows:
        raise DataError("add_anchor needs at least one point")
    unknown = sorted({k for r in rows for k in r} - set(frame.columns))
    if unknown:
        raise DataError(f"anchor columns {unknown} are not columns of the table; name existing columns")
    extra = pd.DataFrame([{**r, **labels} for r in rows])
    ignore = isinstance(frame.index, pd.RangeIndex)
    return pd.concat([frame, extra], ignore_index=ignore)
