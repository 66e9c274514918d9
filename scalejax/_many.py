"""fit_many(): one independent fit per group (task, data set, run) for hundreds of groups, in one batched call.

Groups of different lengths are padded to one length with zero-weight points.
Every (group, start) pair is screened in one vectorised pass, and the starts
each group polishes (its best distinct ones, until its best optimum is
confirmed: `solve_starts`) are lanes of one compiled, vmapped solve per round.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
import pandas as pd

from ._errors import DataError, ScalejaxError
from ._fit import best_lanes, make_data, make_starts
from ._law import Law
from ._objectives import make_loss
from .laws import get as get_law
from .solvers import CONVERGED, STATUS_NAMES, STRATEGIES, SolverConfig, solve_starts

__all__ = ["fit_many"]


def fit_many(
    law: str | Law,
    frame: pd.DataFrame,
    *,
    x: Mapping[str, str],
    y: str,
    by: str,
    weights: str | None = None,
    loss: str = "huber",
    delta: float = 1e-3,
    starts=None,
    strategy: str = "auto",
    method: str = "lm",
    max_steps: int = 500,
    lanes_per_call: int | None = None,
) -> pd.DataFrame:
    """Fit `law` separately to each group of rows of `frame`, all groups and starts in one batched solve.

    Each group keeps its own best start. Groups may have different numbers of
    rows: shorter ones are padded with zero-weight points, which change nothing.

    Args:
        law: a `Law` or a built-in law's name.
        frame: the rows of every group.
        x: law input name -> column.
        y: the column to fit.
        by: the column naming each row's group (one fit per distinct value).
        weights, loss, delta, starts, method, max_steps: as in `scalejax.fit`
            (the same starts serve every group).
        strategy: `"auto"` (each group screens every start and polishes its best distinct
            ones until its best optimum is reached from 3 of them) or `"all"` (every group
            polishes every start); see `scalejax.solvers.solve_starts`.
        lanes_per_call: lanes stepped together on each device; by default about 8k points' worth
            (small blocks stay in cache).

    Returns:
        A DataFrame indexed by group (sorted), with one column per parameter,
        then `objective`, `status` (`"converged"`, or why the group's best
        start stopped, its parameters then NaN), `n_points` (weighted points),
        `n_starts` (starts the group polished) and `n_converged` (of those, how many converged).

    Example:
        >>> import numpy as np, pandas as pd, scalejax as sj
        >>> x = np.geomspace(1e6, 1e9, 8)
        >>> frame = pd.concat([pd.DataFrame({"x": x, "y": 2 + a * x**-0.3, "task": t})
        ...                    for t, a in [("a", 100.0), ("b", 300.0)]])
        >>> table = sj.fit_many("power", frame, x={"x": "x"}, y="y", by="task")
        >>> round(table.loc["b", "A"])
        300
    """
    law = get_law(law)
    loss = make_loss(loss, delta)
    if not (isinstance(max_steps, int | np.integer) and max_steps > 0):
        raise ScalejaxError(f"max_steps must be a positive integer, got {max_steps!r}")
    if not isinstance(frame, pd.DataFrame):
        raise DataError("fit_many needs a DataFrame with a group column named by `by`")
    data = make_data(law, frame, x, y, weights, by, loss)
    codes, labels = pd.factorize(pd.Series(data.groups), sort=True)
    n_groups = len(labels)
    members = [np.flatnonzero(codes == g) for g in range(n_groups)]
    live = np.array([int(np.sum(data.weights[m] > 0)) for m in members])
    short = np.flatnonzero(live < law.n_params)
    if short.size:
        names = ", ".join(f"{labels[g]!r} ({live[g]})" for g in short[:5]) + (" ..." if short.size > 5 else "")
        raise DataError(
            f"{short.size} groups of column {by!r} have fewer weighted points than the {law.n_params} parameters "
            f"of law {law.name!r}: {names}; remove them or fit a law with fewer parameters"
        )

    # Pad each group to the longest with zero-weight copies of its first point.
    n_max = max(m.size for m in members)
    rows = np.stack([np.concatenate([m, np.full(n_max - m.size, m[0])]) for m in members])
    pad_w = np.stack([np.r_[np.ones(m.size), np.zeros(n_max - m.size)] for m in members])
    group_x = {k: v[rows] for k, v in data.x.items()}
    group_w = data.weights[rows] * pad_w
    group_t = data.target(loss.log_scale)[rows]

    u0 = make_starts(law, starts)
    if strategy not in STRATEGIES:
        raise ScalejaxError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    with jax.enable_x64(True):
        sol = solve_starts(
            law,
            loss,
            u0,
            group_w,
            group_x,
            group_t,
            strategy=strategy,
            method=method,
            config=SolverConfig(max_steps=int(max_steps)),
            lanes_per_call=lanes_per_call or max(8, 8192 // n_max),
            desc="group fits",
        )
    natural = np.stack(list(law.natural(sol.u).values()), axis=-1)
    finite = np.isfinite(sol.objective) & np.all(np.isfinite(natural), axis=1)
    ok = (sol.status == CONVERGED) & finite
    g = np.arange(n_groups)
    # Each group's best converged lane (the rule every fit uses); for a group with none, its
    # lowest-objective lane, for the status.
    best, any_ok = best_lanes(law, sol, problem=sol.problem, n_problems=n_groups)
    fallback = _first_per_group(sol.problem, np.where(np.isfinite(sol.objective), sol.objective, np.inf), n_groups)
    pick = np.where(any_ok, best, fallback)
    values = np.where(any_ok[:, None], natural[pick], np.nan)
    table = pd.DataFrame(values, columns=list(law.param_names), index=pd.Index(labels, name=by))
    table["objective"] = np.where(any_ok, sol.objective[pick], np.nan)
    table["status"] = [
        "converged" if good else ("nonfinite" if c == CONVERGED else STATUS_NAMES[int(c)])
        for good, c in zip(any_ok, sol.status[pick], strict=True)
    ]
    table["n_points"] = live
    table["n_starts"] = np.bincount(sol.problem, minlength=n_groups)[g]
    table["n_converged"] = np.bincount(sol.problem, weights=ok, minlength=n_groups).astype(np.int64)
    return table


def _first_per_group(group: np.ndarray, key: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the lane of lowest `key` in each group (ties: the first lane)."""
    order = np.lexsort((np.arange(key.size), key, group))
    first = np.r_[True, group[order][1:] != group[order][:-1]]
    out = np.zeros(n_groups, dtype=np.int64)
    out[group[order][first]] = order[first]
    return out
