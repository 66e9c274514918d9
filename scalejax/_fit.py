"""fit(): a robust multi-start fit of a law, every start solved in one compiled, vmapped call."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import numpy as np
import pandas as pd

from ._constrain import constrain, expand
from ._data import Data
from ._draws import Draws, with_roles
from ._errors import FitError, LawError, ScalejaxError
from ._law import Law, plain_method
from ._noise import NOISE_KINDS, NoiseModel, default_by, fit_noise, noise_features
from ._objectives import Loss, make_loss, residuals
from ._programs import Program
from .laws import get as get_law
from .solvers import CONVERGED, STATUS_NAMES, Solution, SolverConfig, solve_starts
from .solvers._lm import jacobian_rows

__all__ = ["Fit", "FitWarning", "fit", "make_data", "make_starts"]

# Starts whose final objective is within this relative distance of the best one
# count as having reached the best optimum.
BEST_RTOL = 1e-6
# A parameter closer than this to an open bound (relative to max(1, |bound|), or to
# the width of a two-sided interval) has run to the bound: its transform is flat
# there, so the solver stops on a vanishing gradient, not at an optimum inside.
AT_BOUND_RTOL = 1e-12
# Smallest eigenvalue of the Gauss-Newton information scaled to unit diagonal
# below which the parameters along its eigenvector are not identified.
SINGULAR_EIG = 1e-12
# A parameter whose unit step in the solver's space moves the fitted values (log
# scale; relative to the rms of y on the raw scale) by less than this has no effect.
NO_EFFECT = 1e-8


class FitWarning(UserWarning):
    """The fit converged, but it cannot vouch for some parameters.

    Issued once by `fit()` with every reason `Fit.diagnose()` finds: a
    parameter ran to a bound of its range; parameters have no effect on the
    fitted values, or trade off exactly (singular Gauss-Newton information,
    e.g. every run has the same N, so A and alpha are one number); no
    residual degrees of freedom; or unconverged starts reached a lower
    objective than the reported optimum. Standard errors that cannot be
    computed are NaN.
    """


class Fit(Draws):
    """The best optimum over all starts: a batch of one draw with its Gauss-Newton covariance.

    The noise it carries (`noise`, `noise_model`) is the noise model of its
    residuals: a constant scale, or log-linear in log compute (or in the
    law's first positive input) and, for laws of N and D, in log tokens per
    parameter, chosen by cross-validated log score (`fit(noise=...)`;
    `stats["noise_model"]` and `noise_table()` report it).

    Attributes (beyond those of `Draws`):
        params: parameter name -> value (floats).
        objective: the objective at the optimum (a float).
        solution: per-start results (`u`, `objective`, `status`, `steps`).
        best: the start whose optimum is reported.
        n_starts: number of starts polished (all of them with `strategy="all"`; with "auto" the
            best distinct ones of the screened grid; `stats["n_screened"]` counts the grid).
        n_converged: polished starts that converged.
        n_at_best: converged starts whose objective is within 1e-6 relative of the best.
    """

    solution: Solution
    best: int
    objective: float
    noise_kind: str = eqx.field(static=True)

    def __init__(
        self,
        law: Law,
        data: Data,
        loss: Loss,
        solution: Solution,
        best: int,
        *,
        level: float = 0.95,
        n_screened: int | None = None,
        noise: str = "auto",
    ):
        if noise not in (*NOISE_KINDS, "auto"):
            raise ScalejaxError(f"unknown noise kind {noise!r}; choose 'auto' or one of {', '.join(NOISE_KINDS)}")
        u = np.asarray(solution.u[best], dtype=np.float64)
        assessment = _assess(law, loss, data, u, solution, float(solution.objective[best]))
        noise_model = residual_noise(law, data, assessment.residuals, noise)
        converged = solution.status == CONVERGED
        objective = float(solution.objective[best])
        stats = {
            "n_points": int(np.sum(data.weights > 0)),
            "dof": assessment.dof,
            "n_starts": int(solution.status.shape[0]),
            "n_screened": int(solution.status.shape[0] if n_screened is None else n_screened),
            "n_converged": int(converged.sum()),
            "n_at_best": int(np.sum(converged & (solution.objective <= objective + BEST_RTOL * abs(objective)))),
            "objective": objective,
            "residual_sd": assessment.sigma,
            "noise_model": None if noise_model is None else noise_model.summary(),
        }
        codes, counts = np.unique(solution.status, return_counts=True)
        stats["status_counts"] = {STATUS_NAMES[int(c)]: int(n) for c, n in zip(codes, counts, strict=True)}
        super().__init__(
            law,
            u[None, :],
            center_u=u,
            noise={} if noise_model is None else noise_model.at_draws(1),
            log_scale=loss.log_scale,
            noise_model=noise_model,
            cov_u=assessment.cov_u,
            data=data,
            loss=loss,
            columns=data.columns,
            level=level,
            stats=stats,
            warnings=assessment.problems,
        )
        self.solution = Solution(*(None if a is None else np.asarray(a) for a in solution))
        self.best = int(best)
        self.objective = objective
        self.noise_kind = str(noise)

    @property
    def point_fit(self) -> Fit:
        return self

    @property
    def params(self) -> dict[str, float]:
        """The optimum's parameters (natural scale); for a law with fixed or tied parameters, every
        parameter of the original law (fixed ones at their values, tied ones equal to their leader)."""
        return expand(self.law, self.center)

    @property
    def n_starts(self) -> int:
        return self.stats["n_starts"]

    @property
    def n_converged(self) -> int:
        return self.stats["n_converged"]

    @property
    def n_at_best(self) -> int:
        return self.stats["n_at_best"]

    @property
    def status_counts(self) -> dict[str, int]:
        """How many starts ended in each status."""
        return dict(self.stats["status_counts"])

    @property
    def residuals(self) -> np.ndarray:
        """Residuals at the optimum on the fitted scale (log y for log-scale losses)."""
        r, _ = _residual_jacobian(self.law, self.loss, self.center_u, self.data)
        return r

    @plain_method
    def distinct_optima(self, k: int = 16) -> pd.DataFrame:
        """Up to `k` distinct converged optima of the starts, best first (natural values).

        Cheap, broad starts for a refit on related data (a backtest's smaller
        runs), as the bootstrap warm-starts its resamples. Optima at the edge
        of a bound (E = exp(-800) = 0.0), which cannot be passed back as
        natural starts, are left out.
        """
        sol = self.solution
        ok = np.flatnonzero((sol.status == CONVERGED) & np.isfinite(sol.objective))
        chosen = [np.asarray(self.center_u)]
        for i in ok[np.argsort(sol.objective[ok], kind="stable")]:
            if len(chosen) >= k:
                break
            if all(np.max(np.abs(sol.u[i] - c)) > 1e-3 for c in chosen):
                chosen.append(sol.u[i])
        samples = pd.DataFrame(self.law.natural(np.array(chosen)))
        inside = np.all([[p.contains(v) for v in samples[p.name]] for p in self.law.params], axis=0)
        return samples[inside & np.all(np.isfinite(samples.to_numpy()), axis=1)].reset_index(drop=True)

    @plain_method
    def refit(self, data: Data, *, n: int | None = None, seed: int = 0, level: float | None = None) -> Fit:
        """The same fit (law, loss) on other data, started from this fit's distinct optima."""
        return fit(
            self.law,
            data,
            loss=self.loss,
            starts=self.distinct_optima(),
            level=self.level if level is None else level,
            noise=self.noise_kind,
        )

    @plain_method
    def describe(self) -> str:
        return f"point fit, {self.n_converged}/{self.n_starts} starts converged"

    @plain_method
    def diagnose(self) -> list[str]:
        """Reasons not to trust some parameters (empty when there are none).

        Lists parameters that ran to a bound of their range, why the
        Gauss-Newton standard errors are undefined if they are (no residual
        degrees of freedom, parameters with no effect on the fitted values, or
        parameters that trade off exactly), and unconverged starts that reached
        a lower objective than the reported optimum. `fit()` issues these as
        one `FitWarning`.
        """
        return list(self.warnings)

    @plain_method
    def table(self, level: float | None = None) -> pd.DataFrame:
        """Value, Gauss-Newton standard error and delta-method interval (within the bounds) of each parameter."""
        out = pd.DataFrame(
            {"value": [self.params[k] for k in self.law.param_names], "stderr": self.stderr()},
            index=pd.Index(self.law.param_names, name="param"),
        )
        return with_roles(self.law, out.join(self.interval(level)))


class _Assessment(NamedTuple):
    cov_u: np.ndarray
    sigma: float
    dof: int
    problems: tuple[str, ...]
    residuals: np.ndarray


def residual_noise(law: Law, data: Data, r: np.ndarray, kind: str = "auto") -> NoiseModel | None:
    """The noise model of a fit's fitted-scale residuals `r` (see `fit_noise`), or None when it has none.

    The scale may vary with log10 compute (laws of N and D) or the law's first
    positive input, and with log10 tokens per parameter (laws of N and D);
    None without residual degrees of freedom or when every residual is zero.
    """
    by = default_by(law)
    features = noise_features(data.x, by)
    try:
        return fit_noise(
            r,
            features["key"],
            tokens_per_param=features.get("tokens_per_param"),
            weights=data.weights,
            n_params=law.n_params,
            kind=kind,
            by=by,
        )
    except ScalejaxError:
        return None


def _residual_jacobian(law: Law, loss: Loss, u, data: Data) -> tuple[np.ndarray, np.ndarray]:
    """Fitted-scale residuals `(n,)` and their Jacobian `(n, p)` in the unconstrained parameters, compiled once per law."""
    with jax.enable_x64(True):
        x = {k: np.asarray(v, dtype=np.float64) for k, v in data.x.items()}
        r, jac = _residual_jacobian_compiled(law, loss, np.asarray(u, dtype=np.float64), x, data.target(loss.log_scale))
        return np.asarray(r), np.asarray(jac).T


@functools.partial(jax.jit, static_argnums=(0, 1))
def _residual_jacobian_jit(law, loss, u, x, target):
    return jacobian_rows(lambda v: residuals(law, loss, v, x, target), u)


_residual_jacobian_compiled = Program(_residual_jacobian_jit, "jacobian", n_static=2)


def gauss_newton(law: Law, loss: Loss, u, data: Data) -> tuple[np.ndarray, np.ndarray, float, int]:
    """The Gauss-Newton information `J^T W J` of the unconstrained parameters at `u`, with the residual variance.

    `J` is the Jacobian of the fitted-scale residuals (log y for log-scale
    losses), `W` the point weights; `s^2 = sum(w r^2) / (n - p)` over the
    weighted points (NaN without residual degrees of freedom).

    Returns:
        `(info, jacobian, s2, dof, residuals)`.
    """
    r, jac = _residual_jacobian(law, loss, u, data)
    w = data.weights
    live = w > 0
    dof = int(np.sum(live)) - law.n_params
    jac = np.where(live[:, None], jac, 0.0)
    info = jac[live].T @ (w[live, None] * jac[live])
    s2 = float(np.sum(w[live] * r[live] ** 2) / dof) if dof > 0 else float("nan")
    return info, jac, s2, dof, r


def covariance(info, s2, names, *, jac=None, weights=None, size: float = 1.0, skip=()) -> tuple[np.ndarray, list]:
    """`s2 * info^-1` in the unconstrained space, or NaN with the reason it is undefined; batched over draws.

    One implementation for fits, analyses and experiment design. Undefined
    when `s2` is not finite (no residual degrees of freedom), the information
    is not finite, some parameters have no effect on the fitted values (a
    unit step in the solver's space moves them by less than
    `NO_EFFECT * size`, root mean square over the weighted points; names in
    `skip` are not checked), or the information is singular once scaled to
    unit diagonal (parameters trade off exactly).

    Args:
        info: `(p, p)` or `(S, p, p)` Gauss-Newton information.
        s2: the residual variance (scalar or `(S,)`).
        names: the parameter names.
        jac: optional `(n, p)` or `(S, n, p)` residual Jacobians, for the no-effect check.
        weights: `(n,)` point weights of `jac` (default 1).
        size: the scale the no-effect threshold is relative to.
        skip: parameter names exempt from the no-effect check (those at a bound).

    Returns:
        `(cov, reasons)`: the covariance (NaN where undefined), and per draw the
        reason (a string) or None; for a single `(p, p)` input, one reason.
    """
    single = np.ndim(info) == 2
    info = np.asarray(info, dtype=np.float64).reshape(-1, len(names), len(names))
    count = info.shape[0]
    s2 = np.broadcast_to(np.asarray(s2, dtype=np.float64), (count,))
    cov = np.full_like(info, np.nan)
    reasons: list[str | None] = [None] * count
    todo = np.ones(count, dtype=bool)

    def refuse(mask, reason):
        for i in np.flatnonzero(mask & todo):
            reasons[i] = reason(i) if callable(reason) else reason
        todo[mask] = False

    refuse(~np.isfinite(s2), "no residual degrees of freedom, so standard errors are undefined")
    refuse(
        ~np.all(np.isfinite(info), axis=(1, 2)),
        "the Jacobian is not finite at the optimum, so standard errors are undefined",
    )
    if jac is not None:
        jac = np.asarray(jac, dtype=np.float64).reshape(count, -1, len(names))
        w = np.ones(jac.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
        effect = np.stack([_effects(j, w) for j in jac])
        checked = np.array([n not in skip for n in names])
        idle = (effect <= NO_EFFECT * size) & checked

        def no_effect(i):
            return (
                f"parameters {', '.join(names[j] for j in np.flatnonzero(idle[i]))} have no effect on the fitted "
                f"values at these inputs (a unit step in the solver's space moves them by less than {NO_EFFECT:g}), "
                "so the data do not determine them and standard errors are NaN"
            )

        refuse(idle.any(axis=1), no_effect)
    # Scale to unit diagonal so that the test does not depend on the parameters' units.
    scale = np.sqrt(np.clip(np.diagonal(info, axis1=1, axis2=2), 0, None))
    dead = np.any(scale <= 1e-300, axis=1)
    ok = todo & ~dead
    eig = np.full((count, len(names)), np.nan)
    vec = np.full_like(info, np.nan)
    if ok.any():
        scaled = info[ok] / (scale[ok, :, None] * scale[ok, None, :])
        eig[ok], vec[ok] = np.linalg.eigh(scaled)
    singular = dead | (ok & ~(eig[:, 0] > SINGULAR_EIG))

    def not_identified(i):
        idle = np.flatnonzero(scale[i] <= 1e-300) if dead[i] else np.flatnonzero(np.abs(vec[i][:, 0]) > 0.1)
        return (
            f"parameters {', '.join(names[j] for j in idle)} are not identified by the data (singular Gauss-Newton "
            "information: e.g. all runs share one value of an input, so terms trade off exactly), "
            "so standard errors are NaN"
        )

    refuse(singular, not_identified)
    good = np.flatnonzero(todo)
    if good.size:
        outer = scale[good, :, None] * scale[good, None, :]
        cov[good] = s2[good, None, None] * np.linalg.inv(info[good] / outer) / outer
    return (cov[0], reasons[0]) if single else (cov, reasons)


def _assess(law: Law, loss: Loss, data: Data, u, solution: Solution, objective: float) -> _Assessment:
    """Covariance, noise scale and every reason not to trust the optimum at `u`."""
    names = list(law.param_names)
    info, jac, s2, dof, r = gauss_newton(law, loss, u, data)
    values = law.natural(u)
    size = 1.0 if loss.log_scale else float(np.sqrt(np.average(data.y**2, weights=data.weights)))
    pinned = _at_bound(law, {k: float(v) for k, v in values.items()}, _effects(jac, data.weights) <= NO_EFFECT * size)
    if dof <= 0:
        cov, reason = (
            np.full((len(names),) * 2, np.nan),
            (
                f"{int(np.sum(data.weights > 0))} weighted points for {len(names)} parameters leave no residual "
                "degrees of freedom, so standard errors are undefined"
            ),
        )
    else:
        cov, reason = covariance(
            info, s2, names, jac=jac, weights=data.weights, size=size, skip={name for name, _, _ in pinned}
        )
    problems = []
    if pinned:
        at = ", ".join(f"{name} = {value:.6g} (bound {bound:g})" for name, value, bound in pinned)
        problems.append(
            f"{at} ran to the bound of its range: the data do not hold it inside, so the value is a limit, not an estimate"
        )
    if reason is not None:
        problems.append(reason)
    lower = (solution.status != CONVERGED) & (solution.objective < objective - BEST_RTOL * abs(objective))
    if lower.any():
        problems.append(
            f"{int(lower.sum())} starts that did not converge reached a lower objective "
            f"({float(np.min(solution.objective[lower])):.6g} < {objective:.6g}), so a better optimum "
            "may exist: raise max_steps or give starts nearer it"
        )
    sigma = float(np.sqrt(s2)) if np.isfinite(s2) else float("nan")
    return _Assessment(cov, sigma, dof, tuple(problems), r)


def _effects(jac: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Root mean square change of the fitted values (weighted points) per unit step of each parameter in the solver's space."""
    live = weights > 0
    with np.errstate(over="ignore", invalid="ignore"):
        return np.sqrt(np.sum(weights[live, None] * jac[live] ** 2, axis=0) / np.sum(weights[live]))


def _at_bound(law: Law, params: Mapping[str, float], idle) -> list[tuple[str, float, float]]:
    """`(name, value, bound)` of each parameter that ran to a bound of its range.

    A parameter has run to a bound when it lies within `AT_BOUND_RTOL` of it
    and its step in the solver's space no longer moves the fitted values
    (`idle`): its transform is flat there, so the solver stopped on a
    vanishing gradient, not at an optimum inside. Judged on the effect, not
    the value alone, so that data on a tiny scale (a floor E of 1e-300 on
    losses of 1e-300) are not called "at the bound 0".
    """
    out = []
    for p, still in zip(law.params, idle, strict=True):
        value = params[p.name]
        width = (p.upper - p.lower) if p.lower is not None and p.upper is not None else None
        for bound in (p.lower, p.upper):
            if bound is not None and still:
                tol = AT_BOUND_RTOL * (width if width is not None else max(1.0, abs(bound)))
                if abs(value - bound) <= tol:
                    out.append((p.name, value, bound))
    return out


def make_data(law: Law, frame, x, y, weights, group, loss: Loss, row_name: str = "row") -> Data:
    """Validate the inputs of an entry point into `Data` for `law`."""
    if isinstance(frame, Data):
        frame.check_size(law)
        return frame
    if frame is None:
        if not isinstance(x, Mapping) or y is None:
            raise ScalejaxError(
                "pass a DataFrame with column names in x and y, or x as a dict of arrays and y as an array"
            )
        return Data.from_arrays(x, y, weights=weights, groups=group, law=law, positive_y=loss.log_scale)
    return Data.from_frame(
        frame, x=x, y=y, weights=weights, group=group, law=law, positive_y=loss.log_scale, row_name=row_name
    )


def make_starts(law: Law, starts) -> np.ndarray:
    """Unconstrained starts `(S, p)` from None (the law's grid), a dict, a DataFrame or an array of natural values."""
    if starts is None:
        return law.start_grid()
    if isinstance(starts, pd.DataFrame):
        missing = [k for k in law.param_names if k not in starts.columns]
        if missing:
            raise ScalejaxError(f"starts lack columns for parameters {missing}")
        return law.pack(starts[list(law.param_names)].to_numpy(dtype=np.float64))
    if isinstance(starts, Mapping):
        missing = [k for k in law.param_names if k not in starts]
        if missing:
            raise LawError(f"law {law.name!r} needs values for {missing}")
        columns = np.broadcast_arrays(
            *(np.atleast_1d(np.asarray(starts[k], dtype=np.float64)) for k in law.param_names)
        )
        return law.pack(np.stack(columns, axis=-1))
    arr = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    return law.pack(arr)


def fit(
    law: str | Law,
    frame: pd.DataFrame | Data | None = None,
    *,
    x: Mapping | None = None,
    y=None,
    weights=None,
    group=None,
    loss: str = "huber",
    delta: float = 1e-3,
    over_weight: float = 1.0,
    starts=None,
    strategy: str = "auto",
    method: str = "lm",
    max_steps: int | None = None,
    solver: SolverConfig | None = None,
    level: float = 0.95,
    noise: str = "auto",
    fixed: Mapping[str, float] | None = None,
    tied: Sequence[Sequence[str]] = (),
    progress: bool | None = None,
) -> Fit:
    """Fit `law` to the data from every start at once and keep the best optimum.

    Args:
        law: a `Law` or the name of a built-in one (`"chinchilla"`).
        frame: a DataFrame of runs (or a `Data`); None to pass arrays in `x`, `y`.
        x: law input name -> column of `frame` (or -> array when `frame` is None).
        y: the column (or array) to fit.
        weights: optional column (or array) of per-point weights.
        group: optional group column (kept with the data; used by resampling schemes).
        loss: `"huber"` (on log y, the default), `"squared_log"` or `"squared"` (raw y).
        delta: the Huber delta, on the log scale.
        over_weight: weight of residuals where the law over-predicts (1: symmetric;
            see `scalejax.Loss`).
        starts: None for the law's start grid; or natural-scale starts as a dict,
            a DataFrame with a column per parameter, or an `(S, p)` array.
        strategy: `"auto"` (default) screens every start in one vectorised pass and polishes the
            best distinct ones, in rounds, until the best optimum is reached from 3 of them;
            `"all"` polishes every start (see `scalejax.solvers.solve_starts`).
        method: `"lm"` (Levenberg-Marquardt with IRLS) or `"lbfgs"` (optax L-BFGS).
        max_steps: the most steps a start may take (default 500; overrides `solver.max_steps`).
        solver: a `SolverConfig` (stopping rules, damping) for every start.
        level: the default interval level of the result.
        noise: the noise model of the residuals: `"auto"` (chosen by cross-validated
            log score), `"constant"`, `"log_linear"` (in log10 compute, or in the law's
            first positive input) or `"log_linear_tpp"` (also in log10 tokens per
            parameter; laws of N and D). See `Fit.noise_model`.
        fixed: parameter name -> value held fixed (e.g. `{"alpha": 0.34}`); the others are fitted.
        tied: groups of parameter names that share one value (e.g. `[("alpha", "beta")]`).
            With either, the fit's law is `scalejax.constrain(law, fixed=..., tied=...)`: its
            parameters are the free ones, its tables list every parameter with its `role`
            (`"free"`, `"fixed"`, `"tied to alpha"`), and starts may be given for the full law.
        progress: show a progress bar over the starts (None: only in a terminal
            or notebook, and only once the call has run 2 s).

    Returns:
        A `Fit`. Raises `FitError` when no start converges to finite
        parameters; warns `FitWarning` when the fit converged but some
        parameters ran to a bound or are not identified (`Fit.diagnose()`).

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> sorted(fit.params)
        ['A', 'B', 'E', 'alpha', 'beta']
    """
    law, starts = constrained(law, fixed, tied, starts)
    loss = make_loss(loss, delta, over_weight)
    config = solver_config(solver, max_steps)
    if noise not in (*NOISE_KINDS, "auto"):
        raise ScalejaxError(f"unknown noise kind {noise!r}; choose 'auto' or one of {', '.join(NOISE_KINDS)}")
    data = make_data(law, frame, x, y, weights, group, loss)
    u0 = make_starts(law, starts)
    with jax.enable_x64(True):
        solution = solve_starts(
            law,
            loss,
            u0,
            data.weights,
            data.x,
            data.target(loss.log_scale),
            strategy=strategy,
            method=method,
            config=config,
            progress=progress,
            desc="fit starts",
        )
    pick, ok = best_lanes(law, solution)
    if not ok[0]:
        raise FitError(_no_fit_message(law, solution))
    result = Fit(law, data, loss, solution, int(pick[0]), level=level, n_screened=len(u0), noise=noise)
    problems = result.diagnose()
    if problems:
        warnings.warn(
            f"law {law.name!r}: " + "; ".join(problems) + "; check the design, fix or drop those parameters, "
            "or use the bootstrap or posterior for intervals",
            FitWarning,
            stacklevel=2,
        )
    return result


def constrained(law, fixed, tied, starts=None):
    """The law to fit with `fixed` and `tied` applied, and the starts reduced to its free parameters."""
    law = get_law(law)
    if not fixed and not tied:
        return law, starts
    law = constrain(law, fixed=fixed, tied=tied)
    if starts is not None and hasattr(law, "free"):
        starts = law.free(starts)
    return law, starts


def solver_config(solver: SolverConfig | None, max_steps: int | None, base: SolverConfig | None = None) -> SolverConfig:
    """The solver settings of an entry point: `solver` (or `base`), with `max_steps` when given."""
    if solver is not None and not isinstance(solver, SolverConfig):
        raise ScalejaxError(f"solver must be a scalejax.SolverConfig, got {type(solver).__name__}")
    config = solver or base or SolverConfig()
    if max_steps is not None:
        if not (isinstance(max_steps, int | np.integer) and not isinstance(max_steps, bool) and max_steps > 0):
            raise ScalejaxError(f"max_steps must be a positive integer, got {max_steps!r}")
        config = config.replace(max_steps=int(max_steps))
    return config


def best_lanes(
    law: Law, solution: Solution, k: int | None = None, *, problem=None, n_problems: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The best converged lane of each problem: one rule for fits, bootstraps and batched fits.

    The best lane is the converged one of lowest objective whose parameters are
    finite on both scales (ties: the first lane). Problems are rows of `k`
    consecutive lanes (a resample's warm starts, a fit's starts), or given by
    `problem` (each lane's problem index, any order and count: `fit_many`'s
    groups after the global strategy polished a different number of starts each).

    Returns:
        `(pick, ok)`: per problem the index of the chosen lane (global), and
        whether it converged (when not, `pick` is the problem's first lane).
    """
    n = len(solution.status)
    if problem is None:
        problem = np.arange(n) // (n if k is None else int(k))
    problem = np.asarray(problem, dtype=np.int64)
    n_problems = int(problem.max()) + 1 if n_problems is None else int(n_problems)
    natural = np.stack(list(law.natural(solution.u).values()), axis=-1)
    finite = np.all(np.isfinite(solution.u), axis=1) & np.all(np.isfinite(natural), axis=1)
    good = (solution.status == CONVERGED) & np.isfinite(solution.objective) & finite
    key = np.where(good, solution.objective, np.inf)
    order = np.lexsort((np.arange(n), key, problem))
    first = np.r_[True, problem[order][1:] != problem[order][:-1]]
    pick = np.zeros(n_problems, dtype=np.int64)
    pick[problem[order][first]] = order[first]
    return pick, np.isfinite(key[pick]) & (np.bincount(problem, minlength=n_problems)[:n_problems] > 0)


def _no_fit_message(law: Law, solution: Solution) -> str:
    codes, counts = np.unique(solution.status, return_counts=True)
    summary = ", ".join(f"{n} {STATUS_NAMES[int(c)]}" for c, n in zip(codes, counts, strict=True))
    natural = np.stack(list(law.natural(solution.u).values()), axis=-1)
    finite = np.all(np.isfinite(solution.u), axis=1) & np.all(np.isfinite(natural), axis=1)
    infinite = int(np.sum((solution.status == CONVERGED) & ~finite))
    if infinite:
        summary += f"; {infinite} ran to infinite parameters"
    return (
        f"law {law.name!r} did not fit: none of {len(solution.status)} starts converged ({summary}); "
        "check that the law suits the data (e.g. loss falling with scale), give starts nearer the data, or raise max_steps"
    )
