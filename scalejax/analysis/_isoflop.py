"""IsoFLOP analysis (Chinchilla Approach 2): a parabola in log N per budget, and the power law N*(C).

Each budget's runs (same FLOPs, different model sizes) trace a valley of loss
against log N; the vertex of a fitted parabola is that budget's optimal size.
A line through the vertices in log-log space gives `N* = G C^a`. Intervals
resample runs within each budget; all resamples are solved at once as
weighted least squares.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .._data import Data
from .._draws import tails
from .._errors import DataError, ScalejaxError, describe_rows
from .._resample import uniform_counts

__all__ = ["IsoFLOP", "isoflop"]


@dataclasses.dataclass(frozen=True)
class IsoFLOP:
    """The result of `isoflop`.

    Attributes:
        budgets: one row per budget: `compute`, `n_runs`, and `N`, `D`, `loss`
            at the parabola's vertex (full data) with `_lo`, `_hi`.
        power_law: rows `N` and `D`: `exponent` and `coefficient` of
            `X* = coefficient * C^exponent` with `_lo`, `_hi`.
        log_n_opt: `(1 + n_boot, n_budgets)` log N* of the full data (row 0) and each resample.
        level: the interval level.
        flops_per_param_token: `k` in `D* = C / (k N*)`.
    """

    budgets: pd.DataFrame
    power_law: pd.DataFrame
    log_n_opt: np.ndarray
    level: float
    flops_per_param_token: float
    _slopes: np.ndarray
    _intercepts: np.ndarray

    def predict(self, compute) -> pd.DataFrame:
        """Optimal `N` and `D` at new budgets from the power law, with intervals over the resamples."""
        c = np.atleast_1d(np.asarray(compute, dtype=np.float64))
        if not np.all(np.isfinite(c) & (c > 0)):
            raise ScalejaxError("compute must be finite and > 0")
        lo_q, hi_q = tails(self.level)
        log_n = self._intercepts[:, None] + self._slopes[:, None] * np.log(c)[None, :]
        with np.errstate(over="ignore", divide="ignore"):
            n = np.exp(log_n)
            d = c[None, :] / (self.flops_per_param_token * n)
        out = {"compute": c}
        for name, v in (("N", n), ("D", d)):
            lo, hi = np.quantile(v[1:], [lo_q, hi_q], axis=0)
            out |= {name: v[0], f"{name}_lo": lo, f"{name}_hi": hi}
        return pd.DataFrame(out)


def _vertices(weights, t, y, onehot):
    """Weighted parabola `y = c0 + c1 t + c2 t^2` per (resample, budget): vertex t*, y* (NaN without a minimum)."""
    powers = np.stack([t**k for k in range(5)])  # (5, n)
    m = np.einsum("bi,ig,ki->bgk", weights, onehot, powers)
    r = np.einsum("bi,ig,ki->bgk", weights, onehot, powers[:3] * y)
    a = np.stack([m[..., 0:3], m[..., 1:4], m[..., 2:5]], axis=-2)
    det = np.linalg.det(a)
    ok = np.abs(det) > 1e-12 * np.abs(m[..., 0]) ** 3
    safe = np.where(ok[..., None, None], a, np.eye(3))
    c = np.linalg.solve(safe, r[..., None])[..., 0]
    ok &= c[..., 2] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_opt = np.where(ok, -c[..., 1] / (2 * c[..., 2]), np.nan)
        y_opt = np.where(ok, c[..., 0] - c[..., 1] ** 2 / (4 * c[..., 2]), np.nan)
    return t_opt, y_opt


def isoflop(
    frame: pd.DataFrame,
    *,
    N: str = "params",
    loss: str = "loss",
    compute: str = "budget",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    flops_per_param_token: float = 6.0,
) -> IsoFLOP:
    """Chinchilla Approach 2: per budget a parabola of loss in log N, its vertex, and the power law N*(C).

    Args:
        frame: runs, one per row, several model sizes per compute budget.
        N: column of model sizes.
        loss: column of final losses.
        compute: column of each run's (nominal) FLOP budget; runs with equal
            values form one isoFLOP profile.
        n_boot: resamples of the runs within each budget, for intervals.
        level: interval level.
        seed: seed of the resampling.
        flops_per_param_token: `k` in `D* = C / (k N*)`.

    Returns:
        An `IsoFLOP` with the per-budget table, the power law and `predict(compute)`.
        Resamples where a budget's parabola has no minimum are excluded from
        the power law's intervals, and counted in `power_law.attrs["n_excluded"]`.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> iso = sj.analysis.isoflop(frame, N="N", loss="loss", compute="C", n_boot=200)
        >>> bool(0.4 < iso.power_law.loc["N", "exponent"] < 0.6)
        True

    References:
        Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, Section 3.2 (Approach 2).
    """
    lo_q, hi_q = tails(level)
    if not (isinstance(n_boot, int | np.integer) and n_boot >= 2):
        raise ScalejaxError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    data = Data.from_frame(frame, x={"N": N, "C": compute}, y=loss, positive_y=False)
    budgets, codes = np.unique(data.x["C"], return_inverse=True)
    for g, c in enumerate(budgets):
        rows = np.flatnonzero(codes == g)
        if np.unique(data.x["N"][rows]).size < 3:
            raise DataError(
                f"budget {c:.3g} (column {compute!r}) has fewer than 3 distinct model sizes "
                f"({describe_rows(data.index[rows])}); a parabola needs 3: drop that budget or add runs"
            )
    if budgets.size < 2:
        raise DataError(f"column {compute!r} has one budget ({budgets[0]:.3g}); the power law needs at least 2")
    onehot = (codes[:, None] == np.arange(budgets.size)[None, :]).astype(np.float64)
    s = np.log(data.x["N"])
    center = (onehot.T @ s) / onehot.sum(axis=0)
    t = s - center[codes]

    rng = np.random.default_rng(seed)
    weights = np.empty((n_boot + 1, data.n))
    weights[0] = 1.0
    for g in range(budgets.size):
        rows = np.flatnonzero(codes == g)
        weights[1:, rows] = uniform_counts(rng, rows.size, n_boot)  # the bootstrap's multinomial counts
    t_opt, loss_opt = _vertices(weights, t, data.y, onehot)
    log_n = center[None, :] + t_opt
    if not np.all(np.isfinite(log_n[0])):
        bad = budgets[~np.isfinite(log_n[0])]
        raise DataError(
            f"the loss has no minimum in log N at budgets {', '.join(f'{b:.3g}' for b in bad)} "
            "(the parabola opens downwards); those runs do not bracket the optimum"
        )

    # A resample whose parabola is nearly flat puts its vertex far away: exp may overflow to inf (kept, not hidden).
    with np.errstate(over="ignore"):
        n_opt = np.exp(log_n)
    with np.errstate(divide="ignore"):
        d_opt = budgets[None, :] / (flops_per_param_token * n_opt)
    table = {"compute": budgets, "n_runs": onehot.sum(axis=0).astype(int)}
    for name, v in (("N", n_opt), ("D", d_opt), ("loss", loss_opt)):
        lo, hi = np.nanquantile(v[1:], [lo_q, hi_q], axis=0)
        table |= {name: v[0], f"{name}_lo": lo, f"{name}_hi": hi}

    log_c = np.log(budgets)
    complete = np.all(np.isfinite(log_n), axis=1)
    xc = log_c - log_c.mean()
    slopes = (log_n[complete] - log_n[complete].mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    intercepts = log_n[complete].mean(axis=1) - slopes * log_c.mean()
    rows = {}
    for name, slope, intercept in (
        ("N", slopes, intercepts),
        ("D", 1.0 - slopes, -np.log(flops_per_param_token) - intercepts),
    ):
        with np.errstate(over="ignore"):
            coef = np.exp(intercept)
        rows[name] = {
            "exponent": slope[0],
            "exponent_lo": np.quantile(slope[1:], lo_q),
            "exponent_hi": np.quantile(slope[1:], hi_q),
            "coefficient": coef[0],
            "coefficient_lo": np.quantile(coef[1:], lo_q),
            "coefficient_hi": np.quantile(coef[1:], hi_q),
        }
    power_law = pd.DataFrame.from_dict(rows, orient="index").rename_axis("quantity")
    power_law.attrs["n_excluded"] = int((~complete).sum())
    return IsoFLOP(
        budgets=pd.DataFrame(table),
        power_law=power_law,
        log_n_opt=log_n,
        level=level,
        flops_per_param_token=flops_per_param_token,
        _slopes=slopes,
        _intercepts=intercepts,
    )
