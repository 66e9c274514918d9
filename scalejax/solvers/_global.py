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
   `CONFIRM_RTOL` relative (objectives below `CONFIRM_FLOOR` count as equal), by at least `CONFIRM` distinct polished starts;
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

from .._compile_cache import enable_from_env
from .._errors import ScalejaxError
from .._objectives import Loss, objective, residuals
from .._programs import Program
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
# Objectives this small count as zero (an exact fit): the scale of the solvers' `fscale`.
CONFIRM_FLOOR = 1e-12
# Two starts whose predictions differ nowhere by more than this (log scale; times the rms
# of y for raw-scale losses) are one candidate.
DISTINCT_TOL = 1e-2
# Screening uses at most this many points (evenly spaced): it only orders the starts.
SCREEN_POINTS = 4096
# Candidates examined per start to be chosen in a round (the rest wait for later rounds).
_POOL = 4
# At most this many candidates are compared per problem and round; beyond, starts go in screened order.
_MAX_POOL = 128
# Distinctness is judged on at most this many of the screening points (evenly spaced).
DISTINCT_POINTS = 512
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
    from . import solve_lanes  # the lanes engine lives in the package's __init__

    enable_from_env()
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
    rounds = _Rounds(law, screen, u0, screen.objectives(u0))
    active = np.arange(n_problems)
    size = np.full(n_problems, FIRST_ROUND)
    while active.size:
        problem, start = rounds.choose(active, size[active])
        rounds.record(lanes(problem, start))
        done, exhaust = rounds.verdict(active)
        # Each round doubles; a problem whose unconverged lanes beat its best converged one
        # cannot be confirmed (the optimum runs off, or max_steps is too low): polish the rest at once.
        size[active] = np.where(exhaust, n_starts, 2 * size[active])
        active = active[~done]
    return rounds.solution()


class _Rounds:
    """The polishing rounds of `solve_starts`: which starts each problem polishes next, and when it is done.

    Every step is vectorised over problems: `fit_many` runs hundreds at once.
    """

    def __init__(self, law, screen, u0, f0):
        self.law, self.screen, self.u0 = law, screen, u0
        finite = np.isfinite(f0)
        # Each problem's starts in screened order; starts whose objective is not finite are
        # never polished, unless none is finite (then the first round shows why they fail).
        self.order = np.argsort(np.where(finite, f0, np.inf), axis=1, kind="stable")
        self.eligible = np.take_along_axis(finite, self.order, axis=1)
        none = ~self.eligible.any(axis=1)
        self.eligible[none] = True
        self.polished = np.zeros_like(self.eligible)  # in screened order
        # Predictions of each problem's distinct polished starts (NaN: unused), for later rounds.
        self.reps = np.full((f0.shape[0], 0, screen.distinct_points), np.nan)
        self.parts, self.distinct, self.pending = [], [], None

    def choose(self, active, size):
        """Each active problem's next `size` starts: the best unpolished distinct ones by screened objective.

        A start is distinct when its predictions differ from those of every
        distinct start this problem polished before, and of every one chosen
        before it in this round; only the first `_MAX_POOL` waiting starts are
        examined. Fewer distinct starts than places: the others fill the round
        in screened order.
        """
        waiting = self.eligible[active] & ~self.polished[active]
        # The waiting starts first, in screened order.
        pos = np.argsort(~waiting, axis=1, kind="stable")
        ready = np.take_along_axis(waiting, pos, axis=1)
        n_wait = ready.sum(axis=1)
        pool = min(_POOL * int(size.max()), _MAX_POOL, pos.shape[1])
        examine = ready[:, :pool] & (size < n_wait)[:, None]  # taking every waiting start needs no check
        distinct = np.zeros_like(ready)
        if examine.any():
            starts = np.take_along_axis(self.order[active], pos[:, :pool], axis=1)
            distinct[:, :pool] = self._distinct(active, starts, examine, size)
        # Fill the remaining places with the other waiting starts, best first.
        fill = ready & ~distinct
        room = size - distinct.sum(axis=1)
        take = distinct | (fill & (np.cumsum(fill, axis=1) <= room[:, None]))
        rows, cols = np.nonzero(take)
        where = pos[rows, cols]
        self.polished[active[rows], where] = True
        self.pending = distinct[rows, cols]
        return active[rows], self.order[active[rows], where]

    def _distinct(self, active, starts, examine, size):
        """`(A, K)`: the examined starts chosen as distinct, at most `size` per problem, best first."""
        preds = self.screen.predictions(self.u0[starts], active)  # (A, K, m); NaN off the live points
        live, scale = self.screen.live_for(active), self.screen.scale[active]
        fresh = examine.copy()
        if self.reps.shape[1]:
            fresh &= np.all(_far(preds, self.reps[active], live, scale), axis=2)
        among = _far(preds, preds, live, scale)
        chosen = np.zeros_like(examine)
        count = np.zeros(len(active), dtype=np.int64)
        for j in range(examine.shape[1]):
            ok = fresh[:, j] & (count < size) & np.all(among[:, j, :] | ~chosen, axis=1)
            chosen[:, j] = ok
            count += ok
        block = np.full((self.reps.shape[0], chosen.shape[1], self.reps.shape[2]), np.nan)
        block[active] = np.where(chosen[:, :, None], preds, np.nan)
        keep = block[:, np.any(chosen, axis=0)]  # columns no problem chose need no memory
        self.reps = np.concatenate([self.reps, keep], axis=1)
        return chosen

    def record(self, sol):
        self.parts.append(sol)
        self.distinct.append(self.pending)

    def verdict(self, active):
        """`(done, exhaust)` per active problem.

        Done: the best converged objective is reached (to `CONFIRM_RTOL`) by
        `CONFIRM` distinct polished starts, or no start is left. Exhaust: a
        polished lane that did not converge reached a lower objective than the
        best converged one, so no optimum can be confirmed; the next round
        polishes every remaining start.
        """
        sol = self.solution()
        n = self.polished.shape[0]
        distinct = np.concatenate(self.distinct)
        natural = np.stack(list(self.law.natural(sol.u).values()), axis=-1)
        finite = np.isfinite(sol.objective) & np.all(np.isfinite(sol.u), axis=1) & np.all(np.isfinite(natural), axis=1)
        ok = (sol.status == CONVERGED) & finite
        best = np.full(n, np.inf)
        np.minimum.at(best, sol.problem[ok], sol.objective[ok])
        tol = CONFIRM_RTOL * (np.abs(np.where(np.isfinite(best), best, 0.0)) + CONFIRM_FLOOR)
        lane_best, lane_tol = best[sol.problem], tol[sol.problem]
        at_best = np.bincount(sol.problem, weights=ok & distinct & (sol.objective <= lane_best + lane_tol), minlength=n)
        below = finite & ~ok & (sol.objective < lane_best - lane_tol)
        unconfirmable = np.bincount(sol.problem, weights=below, minlength=n) > 0
        left = (self.eligible & ~self.polished).sum(axis=1)
        done = (left[active] == 0) | ((at_best[active] >= CONFIRM) & ~unconfirmable[active])
        return done, unconfirmable[active] & ~done

    def solution(self):
        from . import Solution

        return Solution(*(np.concatenate([getattr(s, name) for s in self.parts]) for name in Solution._fields))


def _far(a, b, live, scale):
    """`(A, i, j)`: whether predictions `a[:, i]` and `b[:, j]` differ by more than the tolerance in root mean square.

    Over each problem's live points, as one batched matrix product
    (`|a - b|^2 = |a|^2 + |b|^2 - 2 a.b`, after centring, in float64). A point
    where a start's prediction is undefined (NaN) counts as a large difference
    from any defined one.
    """
    defined = np.isfinite(a) & live[:, None, :]
    count = defined.sum(axis=1, keepdims=True)
    centre = np.where(defined, a, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
    # Undefined predictions go far away (on live points only), so they never look alike a defined one.
    far_off = 1e6 * (1.0 + np.asarray(scale))[:, None, None]
    a = np.where(live[:, None, :], np.where(np.isfinite(a), a - centre, far_off), 0.0)
    b = np.where(live[:, None, :], np.where(np.isfinite(b), b - centre, far_off), 0.0)
    sq = (
        np.einsum("akm,akm->ak", a, a)[:, :, None]
        + np.einsum("ajm,ajm->aj", b, b)[:, None, :]
        - 2 * (a @ b.transpose(0, 2, 1))
    )
    n_live = np.maximum(live.sum(axis=1), 1)[:, None, None]
    return np.maximum(sq, 0.0) / n_live > (DISTINCT_TOL * np.asarray(scale)[:, None, None]) ** 2


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
        # Distinctness is judged on a subset of the screening points.
        sel = (
            np.arange(m)
            if m <= DISTINCT_POINTS
            else np.unique(np.linspace(0, m - 1, DISTINCT_POINTS).round()).astype(int)
        )
        d_pad = _bucket(sel.size)
        sel_pad = np.concatenate([sel, np.full(d_pad - sel.size, sel[0])])
        self.x_distinct = {k: v[..., sel_pad] for k, v in self.x.items()}
        self.live_distinct = self.live[:, sel_pad] & (np.arange(d_pad) < sel.size)
        self.distinct_points = d_pad

    def live_for(self, problems):
        return self.live_distinct[problems]

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
        """`(A, K, m)` predictions (fitted scale) of starts `u` `(A, K, p)` on problems, at the points that judge
        distinctness; NaN off the live points."""
        a, k = u.shape[:2]
        a_pad, k_pad = _bucket(a), _bucket(k)
        u_pad = np.zeros((a_pad, k_pad, u.shape[2]))
        u_pad[:a, :k] = u
        probs = np.concatenate([problems, np.full(a_pad - a, problems[0])])
        xs = {k_: self._rows(v, self.axes[1], probs) for k_, v in self.x_distinct.items()}
        with jax.enable_x64(True):
            pred = np.asarray(_predict_compiled(self.law, self.loss, self.axes[1], u_pad, xs))[:a, :k]
        return np.where(self.live_distinct[problems][:, None, :], pred, np.nan)


def _bucket(n: int) -> int:
    from . import bucket_size

    return bucket_size(n)


@functools.partial(jax.jit, static_argnames=("law", "loss", "axes"))
def _screen_jit(law, loss, axes, u, weights, x, target):
    """`(P, S)` objectives: starts `u` `(S, p)` on each problem (rows, or shared inputs broadcast)."""

    def one(w, xs, t):
        return jax.vmap(lambda row: objective(law, loss, row, w, xs, t))(u)

    if axes == (None, None, None):
        return one(weights, x, target)[None]
    return jax.vmap(one, in_axes=axes)(weights, x, target)


@functools.partial(jax.jit, static_argnames=("law", "loss", "x_axis"))
def _predict_jit(law, loss, x_axis, u, x):
    """`(A, K, m)` fitted-scale predictions of starts `u` `(A, K, p)`; x shared or one row per problem."""

    def one(rows, xs):
        return jax.vmap(lambda row: residuals(law, loss, row, xs, jnp.zeros(())))(rows)

    return jax.vmap(one, in_axes=(0, x_axis))(u, x)


_screen_compiled = Program(_screen_jit, "screen", n_static=3)
_predict_compiled = Program(_predict_jit, "predict", n_static=3)
