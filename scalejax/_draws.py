"""Draws: the one value every estimate is, a batch of parameter sets with a leading draw axis.

A point fit is a batch of one with a covariance, a bootstrap a batch of
resample fits, a posterior a batch of MCMC draws. Every analysis is written
for one parameter set and vmapped over the draws by `map_draws`, one cached
compiled function per (function, law, shapes): the second call of any
analysis on the same law and shapes compiles nothing.
"""

from __future__ import annotations

import collections
import warnings
from collections.abc import Callable, Mapping
from statistics import NormalDist

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ._data import Data, as_table
from ._errors import DataError, ScalejaxError
from ._law import Law, plain_method
from ._noise import NoiseModel
from ._objectives import Loss
from .solvers import bucket_size

__all__ = ["Draws", "delta_sd", "law_inputs", "map_draws", "map_rows", "quantity_interval", "tails", "z_value"]


def tails(level: float) -> tuple[float, float]:
    """The lower and upper quantiles of an equal-tailed interval at `level`."""
    if not (isinstance(level, int | float | np.floating) and 0 < level < 1):
        raise ScalejaxError(f"level must be a number between 0 and 1, got {level!r}")
    return (1 - level) / 2, 1 - (1 - level) / 2


def z_value(level: float) -> float:
    """The standard normal quantile of a two-sided interval at `level`."""
    return NormalDist().inv_cdf(tails(level)[1])


# ---------------------------------------------------------------------------------------------
# The mapper: one compiled function per (fn, laws, argument shapes), draws padded to bucket sizes.


@eqx.filter_jit
def _vmapped(fn, laws, us, args):
    def one(*rows):
        return fn(*(law.unpack(row) for law, row in zip(laws, rows, strict=True)), *args)

    return jax.vmap(one)(*us)


@eqx.filter_jit
def _vmapped_rows(fn, u, args):
    return jax.vmap(lambda row: fn(row, *args))(u)


def map_rows(fn: Callable, u, *args):
    """`fn(u_row, *args)` for every row of the unconstrained draws `u`, vmapped and compiled once.

    Like `map_draws`, for functions that need the unconstrained vector itself
    (derivatives in the solvers' space).
    """
    u = np.atleast_2d(np.asarray(u, dtype=np.float64))
    s = u.shape[0]
    size = bucket_size(s)
    rows = np.concatenate([u, u[np.zeros(size - s, dtype=int)]]) if size > s else u
    with jax.enable_x64(True):
        out = _vmapped_rows(fn, rows, _arrays(args))
        return jax.tree.map(lambda a: np.asarray(a)[:s], out)


@eqx.filter_jit
def _with_jacobian(fn, law, u, args):
    def flat(v):
        return _named(fn(law.unpack(v), *args))

    return flat(u), jax.jacfwd(flat)(u)


# The order of the outputs each function returns: JAX sorts dict keys, so the order is recorded
# when the function is traced (once per compiled shape) and read back on later calls.
_ORDER: collections.OrderedDict = collections.OrderedDict()
_ORDER_LIMIT = 512


def _named(out):
    """A function's output as a dict of arrays (a bare array is named `value`), recording its key order."""
    return dict(out) if isinstance(out, Mapping) else {"value": out}


def _ordered(fn, laws, out: dict) -> dict:
    key = (fn, laws)
    order = _ORDER.get(key)
    return {k: out[k] for k in order} if order is not None and set(order) == set(out) else out


def _remember_order(fn, laws, probe) -> None:
    key = (fn, laws)
    if key not in _ORDER:
        _ORDER[key] = list(probe)
        if len(_ORDER) > _ORDER_LIMIT:
            _ORDER.popitem(last=False)


def _record_order(fn, laws):
    """`fn` wrapped to record the order of its output's keys when traced."""

    def recorder(*a):
        out = fn(*a)
        if isinstance(out, Mapping):
            _remember_order(fn, laws, out)
        return out

    return recorder


_RECORDERS: dict = {}


def _recorder(fn, laws):
    key = (fn, laws)
    if key not in _RECORDERS:
        if len(_RECORDERS) > _ORDER_LIMIT:
            _RECORDERS.clear()
        _RECORDERS[key] = _record_order(fn, laws)
    return _RECORDERS[key]


def map_draws(fn: Callable, laws, us, *args):
    """`fn(params_1, ..., *args)` for every row of the draws `us` (one array per law), vmapped and compiled once.

    Args:
        fn: a function of one parameter set per law (natural values, a dict
            each) and `args`; a module-level function (or the same object on
            every call) so that its compiled form is reused.
        laws: a `Law` or a tuple of laws.
        us: the unconstrained draws `(S, p)`, or a tuple of them (one per law, same `S`).
        args: arrays (traced) and other values (static: part of the compiled
            function's key) passed to `fn` after the parameters.

    Returns:
        `fn`'s output with a leading draw axis `S`, as NumPy arrays.
    """
    laws = laws if isinstance(laws, tuple) else (laws,)
    us = us if isinstance(us, tuple) else (us,)
    us = tuple(np.atleast_2d(np.asarray(u, dtype=np.float64)) for u in us)
    s = us[0].shape[0]
    size = bucket_size(s)
    pad = np.zeros(size - s, dtype=int)
    rows = tuple(np.concatenate([u, u[pad]]) if size > s else u for u in us)
    with jax.enable_x64(True):
        out = _vmapped(_recorder(fn, laws), laws, rows, _arrays(args))
        out = jax.tree.map(lambda a: np.asarray(a)[:s], out)
    return _ordered(fn, laws, out) if isinstance(out, dict) else out


def _arrays(args):
    """Array-likes as float64 NumPy arrays (traced), lists included; everything else as given (static)."""

    def convert(a):
        if isinstance(a, list | np.ndarray | jax.Array):
            arr = np.asarray(a)
            return arr.astype(np.float64) if arr.dtype.kind in "biuf" else arr
        return a

    return jax.tree.map(convert, args, is_leaf=lambda a: isinstance(a, list))


def _columns(out) -> dict[str, np.ndarray]:
    out = _named(out)
    return {str(k): np.asarray(v, dtype=np.float64) for k, v in out.items()}


def quantity_interval(draws: Draws, fn: Callable, *args, level: float) -> tuple[dict, dict, dict, dict]:
    """Central value and equal-tailed interval of each output of `fn(params, *args)` over the draws.

    A point estimate with a covariance (a `Fit`) gets delta-method intervals
    (on the log scale of outputs that are positive, so those stay positive);
    draws with several members get percentiles over the draws that give a
    finite value.

    Returns:
        `(central, lo, hi, n_invalid)`: dicts of name -> `(m,)` arrays (and
        the count of draws without a finite value, per output).
    """
    lo_q, hi_q = tails(level)
    if draws.is_point:
        central, sd = delta_sd(draws, fn, *args)
        z = z_value(level)
        lo, hi = {}, {}
        for name, c in central.items():
            if np.all(c > 0):
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    lo[name], hi[name] = c * np.exp(-z * sd[name] / c), c * np.exp(z * sd[name] / c)
            else:
                lo[name], hi[name] = c - z * sd[name], c + z * sd[name]
        return central, lo, hi, {name: 0 for name in central}
    rows = np.vstack([draws.center_u[None, :], draws.u])
    out = _columns(map_draws(fn, draws.law, rows, *args))
    central, lo, hi, invalid = {}, {}, {}, {}
    for name, v in out.items():
        v = v.reshape(v.shape[0], -1)
        central[name] = v[0]
        values = v[1:]
        bad = ~np.isfinite(values)
        invalid[name] = int(bad.any(axis=1).sum())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo[name], hi[name] = np.nanquantile(np.where(bad, np.nan, values), [lo_q, hi_q], axis=0)
    return central, lo, hi, invalid


def delta_sd(draws: Draws, fn, *args) -> tuple[dict, dict]:
    """`fn` at the estimate and the delta-method standard deviation of each output (name -> `(m,)`)."""
    with jax.enable_x64(True):
        value, jac = _with_jacobian(_recorder(fn, (draws.law,)), draws.law, jnp.asarray(draws.center_u), _arrays(args))
    value = _ordered(fn, (draws.law,), {k: np.asarray(v, dtype=np.float64) for k, v in value.items()})
    cov = draws.cov_u
    central, sd = {}, {}
    for name, c in value.items():
        j = np.asarray(jac[name], dtype=np.float64).reshape(-1, draws.law.n_params)
        central[name] = c.reshape(-1)
        with np.errstate(invalid="ignore", over="ignore"):
            sd[name] = np.sqrt(np.clip(np.einsum("mi,ij,mj->m", j, cov, j), 0, None))
    return central, sd


def _predict_fn(p, law, x):
    return law.predict(p, x)


def _log_predict_fn(p, law, x):
    return law.log_predict(p, x)


# ---------------------------------------------------------------------------------------------


class Draws(eqx.Module):
    """A batch of parameter sets of one law: the value every estimate is and every analysis reads.

    A frozen `equinox.Module`. `Fit`, `Bootstrap` and `Posterior` are
    subclasses that add what made them; analyses and the report read only
    the fields below.

    Attributes:
        law: the `Law` (static).
        u: `(S, n_params)` draws in the solvers' unconstrained space.
        center_u: `(n_params,)` the central estimate (a fit's optimum, a
            bootstrap's full-data fit, a posterior's median).
        noise: named draws of the observation noise, each `(S,)`: `sigma` (the
            noise scale on the fitted scale, at the centre of the noise model's
            covariates), the noise model's slopes (`sigma_slope` per decade of
            compute or of the key input, `sigma_slope_tpp` per decade of tokens
            per parameter) and, for a Student-t likelihood, `nu`; empty when the
            estimate carries none.
        noise_model: the `NoiseModel` chosen for the residuals (static; None when
            there is none): how the noise scale varies with compute and tokens per
            parameter, which `noise` draws.
        calibration: the `scalejax.analysis.Calibration` of the predictive
            intervals carried with the draws (static; None until `calibrated()`
            attaches one: analyses then compute it once per estimate and cache it).
        log_scale: whether the noise (and the fit) are on log y (static).
        cov_u: `(n_params, n_params)` covariance of a point estimate in the
            unconstrained space (delta method / Gauss-Newton), or None.
        data: the runs the estimate came from (`Data`), or None.
        loss: the `Loss` an estimate minimised (None for a posterior).
        columns: law input name -> source column (and `"y"`), to read new inputs.
        level: the default interval level.
        stats: the estimate's statistics (convergence counts, diagnostics).
        warnings: reasons not to trust parts of the estimate, one sentence each.
    """

    law: Law = eqx.field(static=True)
    u: np.ndarray
    center_u: np.ndarray
    noise: dict
    log_scale: bool = eqx.field(static=True)
    noise_model: NoiseModel | None = eqx.field(static=True)
    calibration: object = eqx.field(static=True)
    cov_u: np.ndarray | None
    data: Data | None
    loss: Loss | None = eqx.field(static=True)
    columns: dict
    level: float
    stats: dict
    warnings: tuple

    def __init__(
        self,
        law: Law,
        u,
        *,
        center_u=None,
        noise: Mapping | None = None,
        log_scale: bool = True,
        noise_model: NoiseModel | None = None,
        calibration=None,
        cov_u=None,
        data: Data | None = None,
        loss: Loss | None = None,
        columns: Mapping | None = None,
        level: float = 0.95,
        stats: Mapping | None = None,
        warnings: tuple | list = (),
    ):
        if not isinstance(law, Law):
            raise ScalejaxError(f"draws need a scalejax.Law, got {type(law).__name__}")
        u = np.atleast_2d(np.asarray(u, dtype=np.float64))
        if u.ndim != 2 or u.shape[1] != law.n_params:
            raise ScalejaxError(f"draws of law {law.name!r} need shape (S, {law.n_params}), got {u.shape}")
        tails(level)
        self.law = law
        self.u = u
        if center_u is None:
            center_u = law.pack(pd.DataFrame(law.natural(u)).median().to_dict()) if u.shape[0] > 1 else u[0]
        self.center_u = np.asarray(center_u, dtype=np.float64).reshape(law.n_params)
        self.noise = {
            str(k): np.broadcast_to(np.asarray(v, dtype=np.float64), (u.shape[0],)).copy()
            for k, v in (noise or {}).items()
        }
        self.log_scale = bool(log_scale)
        if noise_model is not None and not isinstance(noise_model, NoiseModel):
            raise ScalejaxError(f"noise_model must be a NoiseModel, got {type(noise_model).__name__}")
        self.noise_model = noise_model
        self.calibration = calibration
        self.cov_u = None if cov_u is None else np.asarray(cov_u, dtype=np.float64).reshape(law.n_params, law.n_params)
        self.data = data
        self.loss = loss
        self.columns = dict(columns or {})
        self.level = float(level)
        self.stats = dict(stats or {})
        self.warnings = tuple(str(w) for w in warnings)

    # -- equality ---------------------------------------------------------------------------
    def __eq__(self, other) -> bool:
        """Equal type, law and every field (arrays elementwise, NaN equal to NaN)."""
        return type(self) is type(other) and _tree_equal(self, other)

    def __hash__(self):  # arrays inside: not hashable
        raise TypeError(f"unhashable type: {type(self).__name__!r}")

    # -- the draws ----------------------------------------------------------------------------
    @property
    def n_draws(self) -> int:
        return self.u.shape[0]

    @property
    def is_point(self) -> bool:
        """A single draw with a covariance: intervals come from the delta method."""
        return self.n_draws == 1 and self.cov_u is not None

    @property
    def samples(self) -> pd.DataFrame:
        """One row per draw, one column per parameter (natural scale)."""
        return pd.DataFrame(self.law.natural(self.u))

    @property
    def center(self) -> dict[str, float]:
        """The central estimate (natural scale): a fit's optimum, a bootstrap's full-data fit, a posterior's median."""
        return {k: float(v) for k, v in self.law.natural(self.center_u).items()}

    @property
    def columns_of_inputs(self) -> dict:
        return {k: v for k, v in self.columns.items() if k in self.law.inputs}

    @plain_method
    def noise_sigma(self) -> np.ndarray:
        """The noise scale of each draw on the fitted scale, `(S,)`; raises when the draws carry none."""
        sigma = self.noise.get("sigma")
        if sigma is None or not np.all(np.isfinite(sigma)):
            raise ScalejaxError(
                f"these {type(self).__name__} draws carry no finite noise scale (no residual degrees of freedom, "
                "or a likelihood without one); pass noise= (the standard deviation of log y)"
            )
        return sigma

    @plain_method
    def noise_at(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Each draw's noise scale at the points `x` (law inputs): `(S, m)`.

        With a noise model, each draw's own scale and slopes evaluated at the
        points' covariates (held at the ends of the fitted range); else each
        draw's constant `sigma`. Raises when the draws carry no noise scale.
        """
        sigma = self.noise_sigma()
        m = np.atleast_1d(np.asarray(next(iter(x.values())))).shape[0]
        if self.noise_model is None or self.noise_model.kind == "constant":
            return np.broadcast_to(sigma[:, None], (self.n_draws, m)).copy()
        return self.noise_model.sigma_draws(self.noise, x)

    @plain_method
    def noise_scale(self, new) -> np.ndarray:
        """Each draw's noise scale at the rows of `new` (a DataFrame or dict, by input or column name): `(S, m)`."""
        return self.noise_at(law_inputs(self.law, new, self.columns))

    @property
    def point_fit(self):
        """The point `Fit` these draws were made around (a bootstrap's full-data fit, a posterior's Huber
        start, a fit itself), or None: what `scalejax.analysis.calibration_of` backtests."""
        return getattr(self, "fit", None)

    @plain_method
    def calibrated(self, calibration=None, **options) -> Draws:
        """The same draws carrying the calibration of their predictive intervals (saved with them by `sj.save`).

        Args:
            calibration: a `scalejax.analysis.Calibration` to attach; default: the one
                the analyses use (`scalejax.analysis.calibration_of`, computed once and
                cached), or with `options` (`by`, `direction`, `cutoffs`, ...) a new
                `scalejax.analysis.calibrate` of `point_fit`.

        Raises `ScalejaxError` when the draws cannot be calibrated (too few runs, no data).
        """
        from .analysis._calibrate import calibrate, calibration_of

        if calibration is None:
            if options:
                if self.point_fit is None:
                    raise ScalejaxError(f"these {type(self).__name__} draws carry no point fit to calibrate")
                calibration = calibrate(self.point_fit, **options)
            else:
                calibration, note = calibration_of(self)
                if calibration is None:
                    raise ScalejaxError(f"these draws cannot be calibrated: {note}")
        new = _copy(self)
        object.__setattr__(new, "calibration", calibration)
        return new

    @plain_method
    def noise_table(self, level: float | None = None) -> pd.DataFrame:
        """One row per noise parameter (`sigma`, its slopes, `nu`...): central value, sd and interval over the draws.

        The central value is the full-data fit's (a bootstrap's, or a fit's
        own), else the median; a point fit's sd and interval come from the
        noise model's asymptotic covariance (log sigma and slopes normal).
        """
        level = self.level if level is None else level
        lo_q, hi_q = tails(level)
        rows = {}
        model = self.noise_model
        for name, values in self.noise.items():
            values = np.asarray(values, dtype=np.float64)
            if self.n_draws > 1:
                center = self.point_fit.noise.get(name) if self.point_fit is not None else None
                value = float(center[0]) if center is not None else float(np.nanmedian(values))
                rows[name] = {
                    "value": value,
                    "sd": float(np.nanstd(values, ddof=1)),
                    "lo": float(np.nanquantile(values, lo_q)),
                    "hi": float(np.nanquantile(values, hi_q)),
                }
            elif model is not None and name in model.draw_names:
                j = model.draw_names.index(name)
                sd = float(np.sqrt(max(model.cov[j, j], 0.0)))
                z = z_value(level)
                value = float(values[0])
                if name == "sigma":  # normal on log sigma
                    rows[name] = {
                        "value": value,
                        "sd": value * sd,
                        "lo": value * np.exp(-z * sd),
                        "hi": value * np.exp(z * sd),
                    }
                else:
                    rows[name] = {"value": value, "sd": sd, "lo": value - z * sd, "hi": value + z * sd}
            else:
                rows[name] = {"value": float(values[0]), "sd": np.nan, "lo": np.nan, "hi": np.nan}
        out = pd.DataFrame.from_dict(rows, orient="index", columns=["value", "sd", "lo", "hi"])
        return out.rename_axis("param")

    # -- intervals ------------------------------------------------------------------------------
    @plain_method
    def interval(self, level: float | None = None, method: str = "percentile") -> pd.DataFrame:
        """Interval of each parameter: columns `lo`, `hi`, indexed by parameter.

        Draws with several members: equal-tailed percentiles over the draws,
        on the host. A point fit: the delta method in the parameters'
        unconstrained space mapped back, so a bounded parameter's interval
        stays inside its bounds.
        """
        level = self.level if level is None else level
        lo_q, hi_q = tails(level)
        names = list(self.law.param_names)
        if method != "percentile":
            return self._other_interval(level, method)
        if self.is_point:
            z = z_value(level)
            sd = np.sqrt(np.clip(np.diag(self.cov_u), 0, None))
            with np.errstate(over="ignore", invalid="ignore"):
                a = self.law.natural(self.center_u - z * sd)
                b = self.law.natural(self.center_u + z * sd)
            lo = [float(min(a[k], b[k])) for k in names]
            hi = [float(max(a[k], b[k])) for k in names]
            return pd.DataFrame({"lo": lo, "hi": hi}, index=pd.Index(names, name="param"))
        natural = self.law.natural(self.u)
        lo, hi = np.quantile(np.stack([natural[k] for k in names], axis=1), [lo_q, hi_q], axis=0)
        return pd.DataFrame({"lo": lo, "hi": hi}, index=pd.Index(names, name="param"))

    @plain_method
    def _other_interval(self, level: float, method: str) -> pd.DataFrame:
        raise ScalejaxError(f"unknown interval method {method!r} for {type(self).__name__}; use 'percentile'")

    @plain_method
    def table(self, level: float | None = None) -> pd.DataFrame:
        """Central value, standard deviation (over the draws, or the delta method) and interval of each parameter."""
        level = self.level if level is None else level
        names = list(self.law.param_names)
        center = self.center
        if self.is_point:
            sd = self.stderr()
        else:
            sd = self.samples.std(ddof=1).to_numpy() if self.n_draws > 1 else np.full(len(names), np.nan)
        out = pd.DataFrame({"value": [center[k] for k in names], "sd": sd}, index=pd.Index(names, name="param"))
        out = out.join(self.interval(level))
        noise = self.noise_table(level)
        return with_roles(self.law, pd.concat([out, noise]) if len(noise) else out)

    @plain_method
    def stderr(self) -> np.ndarray:
        """Delta-method standard errors of the natural parameters (NaN without a covariance)."""
        if self.cov_u is None:
            return np.full(self.law.n_params, np.nan)
        scale = np.array([_natural_per_unit(p, self.center[p.name]) for p in self.law.params])
        with np.errstate(invalid="ignore"):
            return np.sqrt(np.clip(np.diag(self.cov_u), 0, None)) * np.abs(scale)

    @plain_method
    def covariance(self) -> pd.DataFrame:
        """Covariance of the natural parameters (delta method from `cov_u`; all NaN without one)."""
        names = list(self.law.param_names)
        if self.cov_u is None:
            return pd.DataFrame(np.full((len(names),) * 2, np.nan), index=names, columns=names)
        scale = np.array([_natural_per_unit(p, self.center[p.name]) for p in self.law.params])
        return pd.DataFrame(self.cov_u * np.outer(scale, scale), index=names, columns=names)

    # -- functions of the parameters ----------------------------------------------------------
    @plain_method
    def map(self, fn: Callable[..., object], *args):
        """Apply `fn(params, *args)`, written for one parameter set, to every draw (vmapped, compiled once).

        Returns the outputs stacked along a leading draw axis, as NumPy arrays.
        Pass the same function object on every call (a module-level function,
        not a fresh lambda) to reuse its compiled form.
        """
        return map_draws(fn, self.law, self.u, *args)

    def derived_interval(
        self, fn: Callable[..., object], *args, level: float | None = None, method: str = "percentile"
    ) -> pd.DataFrame:
        """Interval of quantities derived from one parameter set by `fn(params, *args) -> dict of scalars`.

        Returns a frame indexed by quantity with `value` (at the central
        estimate), `lo` and `hi`: percentiles over the draws, or the delta
        method for a point fit.
        """
        level = self.level if level is None else level
        if method != "percentile":
            return self._other_derived(fn, args, level, method)
        central, lo, hi, _ = quantity_interval(self, fn, *args, level=level)
        rows = {k: {"value": float(central[k][0]), "lo": float(lo[k][0]), "hi": float(hi[k][0])} for k in central}
        return pd.DataFrame.from_dict(rows, orient="index")

    @plain_method
    def _other_derived(self, fn, args, level, method):
        raise ScalejaxError(f"unknown interval method {method!r} for {type(self).__name__}; use 'percentile'")

    # -- predictions ----------------------------------------------------------------------------
    @plain_method
    def predict_draws(self, new) -> np.ndarray:
        """Predicted y at the rows of `new` for every draw: `(S, m)`."""
        x = law_inputs(self.law, new, self.columns)
        return map_draws(_predict_fn, self.law, self.u, self.law, x)

    @plain_method
    def predict(self, new, level: float | None = None, *, calibration="auto", seed: int = 0) -> pd.DataFrame:
        """Predicted y at the rows of `new` (a DataFrame or dict, by input or column name).

        Returns a DataFrame with the caller's index (a DataFrame's, else 0..m-1):
        `y` at the central estimate, `lo`, `hi` (the interval of the law's
        prediction: over the draws, or the delta method for a point fit),
        `pred_lo`, `pred_hi` (the predictive interval of a new run: the draws'
        noise added, widened for extrapolation by the calibration; NaN when
        the draws carry no noise scale) and `distance` (decades of compute, or
        of the key input, beyond the data; with `distance_<input>` when the
        calibration also widens by an input's own extrapolation). See `scalejax.analysis.extrapolate`.

        Args:
            new: the points.
            level: the interval level (default: the draws').
            calibration: `"auto"` (the default calibration, `scalejax.analysis.calibration_of`),
                None (uncalibrated), or a `scalejax.analysis.Calibration`.
            seed: seed of the simulated noise.
        """
        from .analysis import extrapolate

        new = as_table(new)  # issue 16: any table; a pandas (or xarray) index is kept
        level = self.level if level is None else level
        has_noise = "sigma" in self.noise
        table = extrapolate(
            self, new, level=level, noise=None if has_noise else 0.0, calibration=calibration, seed=seed
        )
        out = pd.DataFrame(
            {
                "y": table["y"].to_numpy(),
                "lo": table["y_lo"].to_numpy(),
                "hi": table["y_hi"].to_numpy(),
                "pred_lo": table["y_pred_lo"].to_numpy() if has_noise else np.nan,
                "pred_hi": table["y_pred_hi"].to_numpy() if has_noise else np.nan,
                "distance": table["distance"].to_numpy(),
                **{c: table[c].to_numpy() for c in table.columns if c.startswith("distance_")},
            },
            index=new.index if isinstance(new, pd.DataFrame) else None,
        )
        out.attrs.update(table.attrs)
        return out

    @property
    def residuals(self) -> np.ndarray:
        """Residuals of the data at the central estimate on the fitted scale (log y, or y for a raw-scale fit)."""
        if self.data is None:
            raise DataError(f"these {type(self).__name__} draws do not carry their data, so they have no residuals")
        x = {k: v for k, v in self.data.x.items()}
        pred = map_draws(
            _log_predict_fn if self.log_scale else _predict_fn, self.law, self.center_u[None, :], self.law, x
        )[0]
        return pred - self.data.target(self.log_scale)

    # -- making the same estimate again ---------------------------------------------------------
    @plain_method
    def refit(self, data: Data, *, n: int | None = None, seed: int = 0, level: float | None = None) -> Draws:
        """The same kind of estimate made again on other data (e.g. a backtest's smaller runs).

        Plain draws know nothing of how they were made: a Huber point fit from
        the law's grid. `Fit`, `Bootstrap` and `Posterior` refit as they were made.
        """
        from ._fit import fit

        return fit(self.law, data, level=self.level if level is None else level)

    @plain_method
    def describe(self) -> str:
        """How the estimate was made, in a few words (for reports)."""
        return f"{self.n_draws} draws"

    @plain_method
    def with_data(self, data: Data) -> Draws:
        """The same draws carrying `data` (for draws made elsewhere, to report or backtest on runs)."""
        return eqx.tree_at(lambda d: d.data, self, data, is_leaf=lambda v: v is None)

    # -- subsets -------------------------------------------------------------------------------
    @plain_method
    def select(self, law: Law, columns_idx, **changes) -> Draws:
        """The draws of another law made of some of these parameters (e.g. one group of a joint law)."""
        idx = list(columns_idx)
        cov = None if self.cov_u is None else self.cov_u[np.ix_(idx, idx)]
        fields = dict(
            center_u=self.center_u[idx],
            noise=self.noise,
            log_scale=self.log_scale,
            noise_model=self.noise_model,
            cov_u=cov,
            data=None,
            loss=self.loss,
            columns={k: v for k, v in self.columns.items() if k in law.inputs or k == "y"},
            level=self.level,
            stats=self.stats,
            warnings=self.warnings,
        )
        fields.update(changes)
        return Draws(law, self.u[:, idx], **fields)

    # -- display (issue 16) ---------------------------------------------------------------------
    @plain_method
    def summary(self, level: float | None = None) -> dict:
        """What the estimate is, as data: the law, the data size, fit statistics, convergence, parameters, warnings.

        Returns:
            A dict: `kind` (`"Fit"`, `"Bootstrap"`, `"Posterior"`, `"Draws"`),
            `law`, `inputs`, `y` (the fitted column), `method` (in words),
            `n_draws`, `level`; those of `n_points`, `dof`, `residual_sd`,
            `objective`, `loss`, `aic`, `bic` (Gaussian log residuals, see
            `analysis.information_criteria`) that apply; the estimate's
            convergence counts (`n_starts`, `n_converged`, `n_at_best`,
            `status_counts`; `n_resamples`, `n_failed`, `n_rescued`; `chains`,
            `rhat_max`, `ess_min`, `divergences`...); `params` (the
            `table(level)` DataFrame), `correlations` (of the parameters: from
            the covariance of a point fit, else over the draws) and `warnings`.

        Example:
            >>> import scalejax as sj
            >>> frame = sj.datasets.load_example("chinchilla")
            >>> s = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss").summary()
            >>> s["n_points"], s["dof"], list(s["params"].columns)
            (81, 76, ['value', 'stderr', 'lo', 'hi'])
        """
        from ._display import summarize

        return summarize(self, level)

    @plain_method
    def _repr_html_(self) -> str:
        """The summary as HTML: how a notebook displays the estimate."""
        from ._display import to_html

        return to_html(self.summary())

    def __repr__(self) -> str:
        """The summary as text: title, fit statistics, parameter table with intervals, warnings."""
        from ._display import to_text

        return to_text(self.summary())


def _copy(module):
    """A shallow copy of a frozen module, whose static fields the caller may then set once."""
    new = object.__new__(type(module))
    for name, value in vars(module).items():
        object.__setattr__(new, name, value)
    return new


def _natural_per_unit(param, value: float) -> float:
    """d(natural value) / d(solver-space value) of `param` at `value`: how its transform scales a step."""
    match param.transform:
        case "identity":
            return 1.0
        case "lower":
            return value - param.lower
        case "upper":
            return -(param.upper - value)
        case _:
            return (value - param.lower) * (param.upper - value) / (param.upper - param.lower)


def _leaf_equal(a, b) -> bool:
    if isinstance(a, np.ndarray | np.generic) or isinstance(b, np.ndarray | np.generic):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    result = a == b
    return bool(result) if isinstance(result, bool | np.bool_) else False


def _tree_equal(a, b) -> bool:
    flat_a, tree_a = jax.tree.flatten(a, is_leaf=lambda v: isinstance(v, Data))
    flat_b, tree_b = jax.tree.flatten(b, is_leaf=lambda v: isinstance(v, Data))
    if tree_a != tree_b:
        return False
    return all(_leaf_equal(x, y) for x, y in zip(flat_a, flat_b, strict=True))


def law_inputs(law: Law, new, columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Read a law's inputs from a DataFrame or dict, by input name or by the fit's column names."""
    new = as_table(new)  # issue 16: polars, pyarrow, xarray... as pandas
    if isinstance(new, pd.DataFrame):
        keys = set(new.columns)
    elif isinstance(new, Mapping):
        keys = set(new)
    else:
        raise DataError(
            f"new inputs must be a table (pandas, polars, pyarrow, xarray...) or a dict of arrays, got {type(new).__name__}"
        )
    out = {}
    for name in law.inputs:
        column = name if name in keys else columns.get(name)
        if column not in keys:
            raise DataError(
                f"new inputs lack {name!r}"
                + (f" (or column {columns[name]!r})" if name in columns else "")
                + f"; law {law.name!r} needs {', '.join(law.inputs)}"
            )
        values = np.atleast_1d(np.asarray(law.encode_input(name, new[column], column=column), dtype=np.float64))
        if not np.all(np.isfinite(values)):
            raise DataError(f"new input {name!r} has missing or infinite values")
        if name in law.positive_inputs and np.any(values <= 0):
            raise DataError(f"new input {name!r} has non-positive values; law {law.name!r} needs {name} > 0")
        out[name] = values
    return dict(zip(out, np.broadcast_arrays(*out.values()), strict=True))


# Columns of a parameter table that hold a value, and those that hold a spread.
_VALUE_COLUMNS = ("value", "median", "mean", "lo", "hi")
_SPREAD_COLUMNS = ("sd", "std", "stderr")


def with_roles(law, table: pd.DataFrame) -> pd.DataFrame:
    """A parameter table with every parameter of a constrained law's base, in its order, and a `role` column.

    Fixed parameters show their value (spread 0, interval the value itself),
    tied ones repeat the row of the parameter they are tied to; rows that are
    not law parameters (noise) follow with role `"noise"`. Tables of
    unconstrained laws are returned as they are.
    """
    roles = getattr(law, "roles", None)
    if roles is None or not hasattr(law, "base"):
        return table
    rows = []
    for name, role in roles().items():
        if role == "free":
            row = table.loc[name].copy()
        elif role == "fixed":
            value = law.fixed_values[name]
            row = pd.Series(np.nan, index=table.columns, dtype=np.float64)
            for c in table.columns:
                if c in _VALUE_COLUMNS:
                    row[c] = value
                elif c in _SPREAD_COLUMNS:
                    row[c] = 0.0
        else:
            row = table.loc[role.removeprefix("tied to ")].copy()
        row.name = name
        rows.append(row)
    out = pd.DataFrame(rows, columns=table.columns)
    out["role"] = list(roles().values())
    rest = table.loc[[k for k in table.index if k not in law.base.param_names]].assign(role="noise")
    out = pd.concat([out, rest]) if len(rest) else out
    return out.rename_axis(table.index.name or "param")
