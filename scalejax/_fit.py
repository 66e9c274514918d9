"""fit(): a robust multi-start fit of a law, every start solved in one compiled, vmapped call."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping

import jax
import numpy as np
import pandas as pd

from ._data import Data
from ._draws import Draws
from ._errors import FitError, LawError, ScalejaxError
from ._law import Law
from ._objectives import Loss, make_loss, residuals
from .laws import get as get_law
from .solvers import CONVERGED, STATUS_NAMES, Solution, SolverConfig, solve_lanes

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
    """The best optimum over all starts: a batch of one draw.

    Attributes:
        params: parameter name -> value (floats).
        objective: the objective at the optimum (a float).
        data: the `Data` fitted.
        loss: the `Loss` used.
        solution: per-start results (`u`, `objective`, `status`, `steps`).
        n_starts: number of starts solved.
        n_converged: starts that converged.
        n_at_best: converged starts whose objective is within 1e-6 relative of the best.
    """

    def __init__(self, law: Law, data: Data, loss: Loss, solution: Solution, best: int):
        super().__init__(law, solution.u[best], columns=data.columns)
        self.data = data
        self.loss = loss
        self.solution = solution
        self.best = best
        self.objective = float(solution.objective[best])
        self.params = {k: float(v) for k, v in self.samples.iloc[0].items()}
        converged = solution.status == CONVERGED
        self.n_starts = int(solution.status.shape[0])
        self.n_converged = int(converged.sum())
        self.n_at_best = int(
            np.sum(converged & (solution.objective <= self.objective + BEST_RTOL * abs(self.objective)))
        )

    @property
    def center(self) -> dict[str, float]:
        """The optimum's parameters."""
        return dict(self.params)

    @property
    def center_u(self) -> np.ndarray:
        return np.asarray(self.u[0])

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v:.6g}" for k, v in self.params.items())
        return f"Fit({self.law.name}: {values}; objective={self.objective:.6g}, {self.n_at_best}/{self.n_starts} starts at best)"

    @property
    def status_counts(self) -> dict[str, int]:
        """How many starts ended in each status."""
        codes, counts = np.unique(self.solution.status, return_counts=True)
        return {STATUS_NAMES[int(c)]: int(n) for c, n in zip(codes, counts, strict=True)}

    @property
    def residuals(self) -> np.ndarray:
        """Residuals at the optimum on the fitted scale (log y for log-scale losses)."""
        with jax.enable_x64(True):
            target = self.data.target(self.loss.log_scale)
            return np.asarray(_residuals_compiled(self.law, self.loss, np.asarray(self.u[0]), self.data.x, target))

    def predict(self, new) -> np.ndarray:
        """Predicted y at the rows of `new` (a DataFrame or dict, by input or column name)."""
        return self.predict_draws(new)[0]

    def covariance(self) -> pd.DataFrame:
        """Gauss-Newton covariance of the natural parameters from the fitted-scale residuals.

        `s^2 (J^T W J)^-1` with `J` the Jacobian of the residuals with respect
        to the natural parameters, `W` the point weights and
        `s^2 = sum(w r^2) / (n - p)`. Asymptotic and local: the bootstrap or
        the posterior give honest intervals. All NaN when it is undefined
        (no residual degrees of freedom, or parameters the data do not
        identify); `diagnose()` says why.
        """
        return self._gauss_newton()[0].copy()

    def _gauss_newton(self) -> tuple[pd.DataFrame, str | None]:
        """The covariance and, when it is undefined, the reason (cached)."""
        if getattr(self, "_gn_cache", None) is not None:
            return self._gn_cache
        law, names = self.law, list(self.law.param_names)
        theta = np.array([self.params[k] for k in names])
        with jax.enable_x64(True):
            target = self.data.target(self.loss.log_scale)
            r, jac = (np.asarray(a) for a in _natural_jacobian(law, self.loss, theta, self.data.x, target))
        w = self.data.weights
        live = w > 0
        dof = int(np.sum(live)) - len(names)
        info = jac[live].T @ (w[live, None] * jac[live])
        cov = np.full((len(names), len(names)), np.nan)
        problem = None
        if dof <= 0:
            problem = (
                f"{int(np.sum(live))} weighted points for {len(names)} parameters leave no residual "
                "degrees of freedom, so standard errors are undefined"
            )
        elif not np.all(np.isfinite(info)):
            problem = "the Jacobian is not finite at the optimum, so standard errors are undefined"
        else:
            # How far the fitted values move (root mean square, on the fitted scale) for a unit
            # step of each parameter in the solver's space (a factor e for log-transformed ones).
            step = np.array([_natural_per_unit(p, self.params[p.name]) for p in law.params])
            effect = np.sqrt(np.sum(w[live, None] * (jac[live] * step) ** 2, axis=0) / np.sum(w[live]))
            size = 1.0 if self.loss.log_scale else float(np.sqrt(np.average(self.data.y**2, weights=w)))
            pinned = {name for name, _, _ in self._at_bound()}
            idle = [names[i] for i in np.flatnonzero(effect <= NO_EFFECT * size) if names[i] not in pinned]
            if idle:
                problem = (
                    f"parameters {', '.join(idle)} have no effect on the fitted values at these inputs "
                    f"(a unit step in the solver's space moves them by less than {NO_EFFECT:g}), so the data "
                    "do not determine them and standard errors are NaN"
                )
            else:
                # Scale to unit diagonal so that the test does not depend on the parameters' units.
                scale = np.sqrt(np.diag(info))
                dead = scale <= 1e-300
                if dead.any():
                    idle = [names[i] for i in np.flatnonzero(dead)]
                else:
                    eig, vec = np.linalg.eigh(info / np.outer(scale, scale))
                    if eig[0] <= SINGULAR_EIG:
                        idle = [names[i] for i in np.flatnonzero(np.abs(vec[:, 0]) > 0.1)]
                    else:
                        s2 = float(np.sum(w * r**2) / dof)
                        cov = s2 * np.linalg.inv(info / np.outer(scale, scale)) / np.outer(scale, scale)
                if idle:
                    problem = (
                        f"parameters {', '.join(idle)} are not identified by the data (singular Gauss-Newton "
                        "information: e.g. all runs share one value of an input, so terms trade off exactly), "
                        "so standard errors are NaN"
                    )
        self._gn_cache = (pd.DataFrame(cov, index=names, columns=names), problem)
        return self._gn_cache

    def _at_bound(self) -> list[tuple[str, float, float]]:
        """`(name, value, bound)` of each parameter that ran to a bound of its range."""
        out = []
        for p in self.law.params:
            value = self.params[p.name]
            width = (p.upper - p.lower) if p.lower is not None and p.upper is not None else None
            for bound in (p.lower, p.upper):
                if bound is not None:
                    tol = AT_BOUND_RTOL * (width if width is not None else max(1.0, abs(bound)))
                    if abs(value - bound) <= tol:
                        out.append((p.name, value, bound))
        return out

    def diagnose(self) -> list[str]:
        """Reasons not to trust some parameters (empty when there are none).

        Lists parameters that ran to a bound of their range, and why the
        Gauss-Newton standard errors are undefined if they are (no residual
        degrees of freedom, parameters with no effect on the fitted values,
        or parameters that trade off exactly), and unconverged starts that
        reached a lower objective than the reported optimum. `fit()` issues
        these as one `FitWarning`.
        """
        problems = []
        at_bound = [f"{name} = {value:.6g} (bound {bound:g})" for name, value, bound in self._at_bound()]
        if at_bound:
            problems.append(
                f"{', '.join(at_bound)} ran to the bound of its range: the data do not hold it inside, "
                "so the value is a limit, not an estimate"
            )
        problem = self._gauss_newton()[1]
        if problem is not None:
            problems.append(problem)
        sol = self.solution
        lower = (sol.status != CONVERGED) & (sol.objective < self.objective - BEST_RTOL * abs(self.objective))
        if lower.any():
            problems.append(
                f"{int(lower.sum())} starts that did not converge reached a lower objective "
                f"({float(np.min(sol.objective[lower])):.6g} < {self.objective:.6g}), so a better optimum "
                "may exist: raise max_steps or give starts nearer it"
            )
        return problems

    def table(self) -> pd.DataFrame:
        """Value and Gauss-Newton standard error of each parameter."""
        cov = self.covariance()
        stderr = np.sqrt(np.clip(np.diag(cov.to_numpy()), 0, None))
        return pd.DataFrame(
            {"value": [self.params[k] for k in cov.index], "stderr": stderr}, index=pd.Index(cov.index, name="param")
        )


def _natural_per_unit(param, value: float) -> float:
    """d(natural value) / d(solver-space value) of `param` at `value`: how its transform scales a step."""
    match param.transform:
        case "identity":
            return 1.0
        case "lower":
            return value - param.lower
        case "upper":
            return param.upper - value
        case _:
            return (value - param.lower) * (param.upper - value) / (param.upper - param.lower)


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
    starts=None,
    method: str = "lm",
    max_steps: int = 500,
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
        starts: None for the law's start grid; or natural-scale starts as a dict,
            a DataFrame with a column per parameter, or an `(S, p)` array.
        method: `"lm"` (Levenberg-Marquardt with IRLS) or `"lbfgs"` (optax L-BFGS).
        max_steps: the most steps a start may take.
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
    law = get_law(law)
    loss = make_loss(loss, delta)
    if not (isinstance(max_steps, int | np.integer) and max_steps > 0):
        raise ScalejaxError(f"max_steps must be a positive integer, got {max_steps!r}")
    data = make_data(law, frame, x, y, weights, group, loss)
    u0 = make_starts(law, starts)
    with jax.enable_x64(True):
        solution = solve_lanes(
            law,
            loss,
            u0,
            data.weights,
            data.x,
            data.target(loss.log_scale),
            method=method,
            config=SolverConfig(max_steps=int(max_steps)),
            progress=progress,
            desc="fit starts",
        )
    result = Fit(law, data, loss, solution, best_lane(law, solution))
    problems = result.diagnose()
    if problems:
        warnings.warn(
            f"law {law.name!r}: " + "; ".join(problems) + "; check the design, fix or drop those parameters, "
            "or use the bootstrap or posterior for intervals",
            FitWarning,
            stacklevel=2,
        )
    return result


@functools.partial(jax.jit, static_argnums=(0, 1))
def _residuals_compiled(law, loss, u, x, target):
    return residuals(law, loss, u, x, target)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _natural_jacobian(law, loss, theta, x, target):
    """Residuals and their Jacobian `(n, p)` with respect to the natural parameters `theta`."""

    def resid(t):
        p = dict(zip(law.param_names, t, strict=True))
        pred = law.log_predict(p, x) if loss.log_scale else law.predict(p, x)
        return pred - target

    return resid(theta), jax.jacfwd(resid)(theta)


def best_lane(law: Law, solution: Solution) -> int:
    """The converged lane of lowest objective; a clear FitError when there is none."""
    natural = np.stack(list(law.natural(solution.u).values()), axis=-1)
    finite = np.all(np.isfinite(solution.u), axis=1) & np.all(np.isfinite(natural), axis=1)
    ok = (solution.status == CONVERGED) & np.isfinite(solution.objective) & finite
    if not ok.any():
        codes, counts = np.unique(solution.status, return_counts=True)
        summary = ", ".join(f"{n} {STATUS_NAMES[int(c)]}" for c, n in zip(codes, counts, strict=True))
        if np.any((solution.status == CONVERGED) & ~finite):
            summary += f"; {int(np.sum((solution.status == CONVERGED) & ~finite))} ran to infinite parameters"
        raise FitError(
            f"law {law.name!r} did not fit: none of {len(solution.status)} starts converged ({summary}); "
            "check that the law suits the data (e.g. loss falling with scale), give starts nearer the data, or raise max_steps"
        )
    return int(np.flatnonzero(ok)[np.argmin(solution.objective[ok])])
