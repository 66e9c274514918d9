"""The global strategy of a multi-start fit: screen every start, polish the best distinct ones, stop when confirmed.

Polishing every start of a grid to convergence is what published fits do, and
most of its cost is wasted: on the real Chinchilla data 2,384 of Hoffmann et
al.'s 4,500 starts reach the same optimum. `solve_starts(strategy="auto")`
instead

1. screens: evaluates the objective at every start, all in one vectorised pass
   (on at most `SCREEN_POINTS` evenly spaced points when the data are larger);
2. polishes, in rounds, the best starts by screened objective that are
   *distinct*: a start whose predictions on the data lie within `DISTINCT_TOL`
   (on the fitted scale, relative to the data's scale for raw-scale losses)
   of a start already chosen is deferred behind the others, since it would
   retrace the same descent. Round `r` polishes `FIRST_ROUND * 2**r` starts per
   problem, so a hard problem reaches the exhaustive grid in a few rounds;
3. stops a problem as soon as its best objective is *confirmed*: reached, to
   `CONFIRM_RTOL` relative, by at least `CONFIRM` distinct polished starts;
   or when every start has been polished (the exhaustive grid, in the worst case).

The evidence for the rule is in benchmarks/RESULTS.md ("global strategy"):
on every real data set the tests and benchmarks fit, it reaches the exhaustive
grid's best objective; tests/test_global.py checks that on each. `strategy="all"`
polishes every start, as before.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ScalejaxError
from .._objectives import Loss, objective, residuals
from ._status import CONVERGED

__all__ = ["CONFIRM", "CONFIRM_RTOL", "DISTINCT_TOL", "FIRST_ROUND", "SCREEN_POINTS", "STRATEGIES", "solve_starts"]

STRATEGIES = ("auto", "all")
# Starts polished per problem in the first round; each later round doubles it.
FIRST_ROUND = 8
# Distinct polished starts that must reach the best objective before it is believed.
CONFIRM = 3
# "Reached the best objective": within this relative distance (converged lanes at one
# optimum agree to about 1e-12, the solver's ftol).
CONFIRM_RTOL = 1e-9
# Two starts whose predictions differ nowhere by more than this (log scale; times the rms
# of y for raw-scale losses) are one candidate.
DISTINCT_TOL = 1e-2
# Screening uses at most this many points (evenly spaced): it only orders the starts.
SCREEN_POINTS = 4096
# Candidates examined per start to be chosen in a round (the rest wait for later rounds).
_POOL = 4
# Objective evaluations per screening call (bounds its memory).
_SCREEN_BATCH = 1 << 22


def solve_starts(
    law,
    loss: Loss,
    u0: np.ndarray,
    weights: np.ndarray,
    x: dict[str, np.ndarray],
    target: np.ndarray,
    *,
    strategy: str = "auto",
    method: str = "lm",
    config=None,
    lanes_per_call: int | None = None,
    progress: bool | None = None,
    desc: str = "fit starts",
):
    """Fit one or several problems from the starts `u0`, each keeping what its best optimum needs.

    Args:
        law, loss: the `Law` and `Loss`.
        u0: `(S, n_params)` unconstrained starts, the same for every problem.
        weights, x, target: the points, shared `(n,)` (one problem: a fit) or one row per
            problem `(P, n)` (many data sets padded to one length with zero weights: `fit_many`).
        strategy: `"auto"` (screen every start, polish the best distinct ones until the best
            optimum is confirmed; see the module docstring) or `"all"` (polish every start).
        method, config, lanes_per_call, progress, desc: as in `solve_lanes`.

    Returns:
        A `Solution` over the polished lanes only, with `start` (index into `u0`) and
        `problem` (row of the per-problem inputs, 0 for a single problem) per lane. Under
        `"all"` that is every (problem, start) pair, problem-major.

    Example:
        >>> import numpy as np, scalejax as sj, jax
        >>> from scalejax._objectives import make_loss
        >>> law = sj.laws.get("power"); x = {"x": np.geomspace(1e6, 1e9, 12)}
        >>> y = np.log(2 + 300 * x["x"] ** -0.3)
        >>> with jax.enable_x64(True):
        ...     sol = solve_starts(law, make_loss(), law.start_grid(), np.ones(12), x, y)
        >>> bool(sol.objective.min() < 1e-12)
        True
    """
    from . import Solution, solve_lanes  # the lanes engine lives in the package's __init__

    if strategy not in STRATEGIES:
        raise ScalejaxError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    u0 = np.atleast_2d(np.asarray(u0, dtype=np.float64))
    n_starts = u0.shape[0]
    weights = np.asarray(weights, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    x = {k: np.asarray(v, dtype=np.float64) for k, v in x.items()}
    rows = [a.shape[0] for a in (weights, target, *x.values()) if a.ndim == 2]
    n_problems = max(rows, default=1)
    solve = functools.partial(
        solve_lanes,
        law,
        loss,
        weights=weights,
        x=x,
        target=target,
        method=method,
        config=config,
        lanes_per_call=lanes_per_call,
        progress=progress,
        desc=desc,
    )

    def lanes(problem, start):
        sol = solve(u0[start], problem=problem if n_problems > 1 else None)
        return sol._replace(start=start, problem=problem)

    if strategy == "all" or n_starts <= FIRST_ROUND:
        return lanes(np.repeat(np.arange(n_problems), n_starts), np.tile(np.arange(n_starts), n_problems))

    screen = _Screen(law, loss, weights, x, target, n_problems)
    f0 = screen.objectives(u0)  # (P, S)
    order = np.argsort(np.where(np.isfinite(f0), f0, np.inf), axis=1, kind="stable")
    finite_sorted = np.take_along_axis(np.isfinite(f0), order, axis=1)
    n_finite = finite_sorted.sum(axis=1)
    polished = np.zeros((n_problems, n_starts), dtype=bool)
    rep_preds = [[] for _ in range(n_problems)]  # predictions of each problem's distinct polished starts
    parts, distinct_parts = [], []
    active = np.arange(n_problems)
    size = FIRST_ROUND
    while active.size:
        choice, distinct = _choose(screen, u0, order, finite_sorted, n_finite, polished, rep_preds, active, size)
        problem = np.repeat(active, [len(c) for c in choice])
        start = np.concatenate(choice).astype(np.int64)
        polished[problem, start] = True
        sol = lanes(problem, start)
        parts.append(sol)
        distinct_parts.append(np.concatenate(distinct))
        done = _confirmed(law, parts, distinct_parts, active, polished, order, n_finite)
        active = active[~done]
        size *= 2

    return Solution(*(np.concatenate([getattr(s, name) for s in parts]) for name in Solution._fields))


def _choose(screen, u0, order, finite_sorted, n_finite, polished, rep_preds, active, size):
    """Each active problem's next `size` starts: the best unpolished distinct ones by screened objective.

    Returns per problem the chosen start indices and whether each is distinct
    (predicts differently from every distinct start polished before). A problem
    whose starts all have a non-finite objective polishes its first `size`
    starts once, so that the caller sees why they fail.
    """
    pool_size = _POOL * size
    pools, valid = [], []
    for p in active:
        waiting = order[p][~polished[p, order[p]] & finite_sorted[p]]
        if n_finite[p] == 0:
            waiting = order[p][~polished[p, order[p]]]
        pool = waiting[:pool_size]
        pools.append(np.pad(pool, (0, pool_size - pool.size)))
        valid.append(np.arange(pool_size) < pool.size)
    pools, valid = np.stack(pools), np.stack(valid)
    preds = screen.predictions(u0[pools], active)  # (A, K, m); NaN on padded and weightless points
    scale = screen.scale[active][:, None, None]

    live = screen.live_for(active)[:, None, None, :]

    def far(a, b):
        """`(A, i, j)`: whether predictions a[:, i] and b[:, j] differ somewhere by more than the tolerance."""
        out = np.empty((a.shape[0], a.shape[1], b.shape[1]), dtype=bool)
        step = max(1, (1 << 22) // max(1, a.shape[1] * b.shape[1] * a.shape[2]))  # bounds the temporary
        for lo in range(0, a.shape[0], step):
            sl = slice(lo, lo + step)
            diff = np.abs(a[sl, :, None, :] - b[sl, None, :, :])
            diff = np.where(np.isnan(diff), np.inf, diff)  # a law undefined at a point: not the same start
            out[sl] = np.max(diff, axis=-1, where=live[sl], initial=0.0) > DISTINCT_TOL * scale[sl]
        return out

    n_reps = np.array([len(rep_preds[p]) for p in active])
    if n_reps.max(initial=0) > 0:
        reps = np.full((len(active), n_reps.max(), preds.shape[-1]), np.nan)
        for i, p in enumerate(active):
            if rep_preds[p]:
                reps[i, : len(rep_preds[p])] = np.stack(rep_preds[p])
        new_vs_old = far(preds, reps) | (np.arange(reps.shape[1])[None, None, :] >= n_reps[:, None, None])
        fresh = valid & np.all(new_vs_old, axis=2)
    else:
        fresh = valid.copy()
    among = far(preds, preds)
    chosen = np.zeros_like(valid)
    count = np.zeros(len(active), dtype=np.int64)
    for j in range(pool_size):
        ok = fresh[:, j] & (count < size) & np.all(among[:, j, :] | ~chosen, axis=1)
        chosen[:, j] = ok
        count += ok
    distinct = chosen.copy()
    # Fewer distinct starts than places: fill with the deferred ones, best first.
    for j in range(pool_size):
        fill = valid[:, j] & ~chosen[:, j] & (count < size)
        chosen[:, j] |= fill
        count += fill
    out, flags = [], []
    for i, p in enumerate(active):
        out.append(pools[i][chosen[i]])
        flags.append(distinct[i][chosen[i]])
        rep_preds[p].extend(preds[i][distinct[i]])
    return out, flags


def _confirmed(law, parts, distinct_parts, active, polished, order, n_finite) -> np.ndarray:
    """Which active problems are done: best objective reached by `CONFIRM` distinct starts, or nothing left."""
    problem = np.concatenate([s.problem for s in parts])
    f = np.concatenate([s.objective for s in parts])
    u = np.concatenate([s.u for s in parts])
    status = np.concatenate([s.status for s in parts])
    distinct = np.concatenate(distinct_parts)
    natural = np.stack(list(law.natural(u).values()), axis=-1)
    ok = (status == CONVERGED) & np.isfinite(f) & np.all(np.isfinite(u), axis=1) & np.all(np.isfinite(natural), axis=1)
    done = np.zeros(active.size, dtype=bool)
    for i, p in enumerate(active):
        mine = problem == p
        left = n_finite[p] - int(polished[p, order[p][: n_finite[p]]].sum())
        if left <= 0 or polished[p].all():
            done[i] = True
            continue
        good = mine & ok
        if not good.any():
            continue
        best = f[good].min()
        at_best = good & distinct & (f <= best + CONFIRM_RTOL * abs(best))
        done[i] = int(at_best.sum()) >= CONFIRM
    return done


class _Screen:
    """Objective and predictions of many starts on the (possibly subsampled) points of each problem."""

    def __init__(self, law, loss, weights, x, target, n_problems):
        self.law, self.loss = law, loss
        n = weights.shape[-1]
        cols = (
            np.arange(n) if n <= SCREEN_POINTS else np.unique(np.linspace(0, n - 1, SCREEN_POINTS).round()).astype(int)
        )
        m = cols.size
        self.m_pad = _bucket(m)
        pad = np.concatenate([cols, np.full(self.m_pad - m, cols[0])])
        keep = (np.arange(self.m_pad) < m).astype(np.float64)

        def sub(a, mask=False):
            out = a[..., pad]
            return out * keep if mask else out

        self.weights = sub(weights, mask=True)
        self.target = sub(target)
        self.x = {k: sub(v) for k, v in x.items()}
        self.n_problems = n_problems
        self.axes = (
            0 if self.weights.ndim == 2 else None,
            0 if any(v.ndim == 2 for v in self.x.values()) else None,
            0 if self.target.ndim == 2 else None,
        )
        if self.axes[1] == 0:
            self.x = {k: np.broadcast_to(v, (n_problems, self.m_pad)) for k, v in self.x.items()}
        w = np.broadcast_to(self.weights, (n_problems, self.m_pad))
        self.live = w > 0
        if loss.log_scale:
            self.scale = np.ones(n_problems)
        else:
            t = np.broadcast_to(self.target, (n_problems, self.m_pad))
            self.scale = np.sqrt(np.sum(w * t**2, axis=1) / np.maximum(np.sum(w, axis=1), 1e-300))
            self.scale = np.where(self.scale > 0, self.scale, 1.0)

    def live_for(self, problems):
        return self.live[problems]

    def _rows(self, a, axis, problems):
        return a if axis is None else a[problems]

    def objectives(self, u0) -> np.ndarray:
        """`(P, S)` objective of every start on every problem, in batches of bounded size."""
        n_starts = u0.shape[0]
        p_chunk = _bucket(min(self.n_problems, max(1, _SCREEN_BATCH // (self.m_pad * min(n_starts, 64)))))
        s_chunk = _bucket(min(n_starts, max(1, _SCREEN_BATCH // (self.m_pad * p_chunk))))
        out = np.empty((self.n_problems, n_starts))
        with jax.enable_x64(True):
            for p0 in range(0, self.n_problems, p_chunk):
                probs = np.arange(p0, p0 + p_chunk).clip(max=self.n_problems - 1)
                w = self._rows(self.weights, self.axes[0], probs)
                xs = {k: self._rows(v, self.axes[1], probs) for k, v in self.x.items()}
                t = self._rows(self.target, self.axes[2], probs)
                for s0 in range(0, n_starts, s_chunk):
                    idx = np.arange(s0, s0 + s_chunk).clip(max=n_starts - 1)
                    f = np.asarray(_screen_compiled(self.law, self.loss, self.axes, u0[idx], w, xs, t))
                    p1, s1 = min(p0 + p_chunk, self.n_problems), min(s0 + s_chunk, n_starts)
                    out[p0:p1, s0:s1] = f[: p1 - p0, : s1 - s0]
        return out

    def predictions(self, u, problems) -> np.ndarray:
        """`(A, K, m)` predictions (fitted scale) of starts `u` `(A, K, p)` on problems; NaN off the live points."""
        a, k = u.shape[:2]
        a_pad, k_pad = _bucket(a), _bucket(k)
        u_pad = np.zeros((a_pad, k_pad, u.shape[2]))
        u_pad[:a, :k] = u
        probs = np.concatenate([problems, np.full(a_pad - a, problems[0])])
        xs = {k_: self._rows(v, self.axes[1], probs) for k_, v in self.x.items()}
        with jax.enable_x64(True):
            pred = np.asarray(_predict_compiled(self.law, self.loss, self.axes[1], u_pad, xs))[:a, :k]
        return np.where(self.live[problems][:, None, :], pred, np.nan)


def _bucket(n: int) -> int:
    from . import bucket_size

    return bucket_size(n)


@functools.partial(jax.jit, static_argnames=("law", "loss", "axes"))
def _screen_compiled(law, loss, axes, u, weights, x, target):
    """`(P, S)` objectives: starts `u` `(S, p)` on each problem (rows, or shared inputs broadcast)."""

    def one(w, xs, t):
        return jax.vmap(lambda row: objective(law, loss, row, w, xs, t))(u)

    if axes == (None, None, None):
        return one(weights, x, target)[None]
    return jax.vmap(one, in_axes=axes)(weights, x, target)


@functools.partial(jax.jit, static_argnames=("law", "loss", "x_axis"))
def _predict_compiled(law, loss, x_axis, u, x):
    """`(A, K, m)` fitted-scale predictions of starts `u` `(A, K, p)`; x shared or one row per problem."""

    def one(rows, xs):
        return jax.vmap(lambda row: residuals(law, loss, row, xs, jnp.zeros(())))(rows)

    return jax.vmap(one, in_axes=(0, x_axis))(u, x)
