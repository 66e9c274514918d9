"""The numbers behind each report section, as DataFrames: data summary, parameters, extrapolation,
compute-optimal frontier, backtest and diagnostics.

Each function takes any `Draws` (a `Fit`, a `Bootstrap`, plain draws, or a
posterior with a `.diagnostics` dict) and the data where the section needs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from statistics import NormalDist

import numpy as np
import pandas as pd

from .._data import Data
from .._draws import Draws, _tails
from .._errors import DataError
from ..analysis import compute_optimal as _compute_optimal
from ..solvers import STATUS_NAMES

__all__ = [
    "backtest_table",
    "compute_optimal_table",
    "data_of",
    "data_summary",
    "diagnostics_table",
    "extrapolation_table",
    "level_of",
    "parameter_table",
    "scale_of",
]

# k in C = k N D: training FLOPs per parameter per token of a dense transformer.
FLOPS_PER_PARAM_TOKEN = 6.0


def level_of(draws: Draws, level: float | None) -> float:
    """The interval level: `level` if given, else the draws' own default, else 0.95."""
    level = getattr(draws, "level", 0.95) if level is None else level
    _tails(level)
    return float(level)


def data_of(draws: Draws, data=None, *, needed_by: str | None = None) -> Data | None:
    """The data behind `draws`: `data` if given (a `Data` or a DataFrame with the fit's columns),
    else the data a `Fit` or a `Bootstrap`'s fit carries.

    Returns None when there is none, or raises a `DataError` naming `needed_by` when given.
    """
    if data is not None:
        if isinstance(data, Data):
            return data
        columns = draws.columns
        missing = [k for k in (*draws.law.inputs, "y") if k not in columns]
        if missing:
            raise DataError(
                f"cannot read the data frame: the draws do not record which columns hold {missing}; pass a scalejax.Data"
            )
        return Data.from_frame(
            data, x={k: columns[k] for k in draws.law.inputs}, y=columns["y"], law=draws.law, positive_y=False
        )
    for owner in (draws, getattr(draws, "fit", None)):
        found = getattr(owner, "data", None)
        if isinstance(found, Data):
            return found
    if needed_by is not None:
        raise DataError(
            f"{needed_by} needs the data, and these {type(draws).__name__} draws do not carry it; pass data= "
            "(a scalejax.Data or the DataFrame of runs)"
        )
    return None


def is_compute_law(law) -> bool:
    """Whether the law takes model size `N` and tokens `D`, so that compute is `6 N D`."""
    return "N" in law.inputs and "D" in law.inputs


def scale_of(law, x: Mapping[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """The horizontal axis of the report's plots: compute `6 N D` for laws of N and D, else the first input."""
    if is_compute_law(law):
        return FLOPS_PER_PARAM_TOKEN * np.asarray(x["N"]) * np.asarray(x["D"]), "compute C = 6 N D (FLOPs)"
    first = law.inputs[0]
    return np.asarray(x[first], dtype=np.float64), first


def center_draws(draws: Draws) -> Draws:
    """The central estimate as a batch of one."""
    return Draws(draws.law, np.asarray(draws.center_u)[None, :], columns=draws.columns)


def band(draws: Draws, x: Mapping[str, np.ndarray], level: float) -> pd.DataFrame:
    """Predicted y at points `x`: `y` at the central estimate, `lo` and `hi` over the draws (NaN for one draw)."""
    x = {k: np.asarray(v, dtype=np.float64) for k, v in x.items()}
    y = center_draws(draws).predict_draws(x)[0]
    if draws.n_draws < 2:
        nan = np.full_like(y, np.nan)
        return pd.DataFrame({"y": y, "lo": nan, "hi": nan})
    lo_q, hi_q = _tails(level)
    values = draws.predict_draws(x)
    return pd.DataFrame(
        {"y": y, "lo": np.nanquantile(values, lo_q, axis=0), "hi": np.nanquantile(values, hi_q, axis=0)}
    )


def data_summary(draws: Draws, data: Data | None) -> pd.DataFrame:
    """Range of each input, of compute and of y over the runs: columns `column`, `min`, `median`, `max`."""
    if data is None:
        return pd.DataFrame(columns=["column", "min", "median", "max"])
    rows = {}
    for name in draws.law.inputs:
        rows[name] = (str(data.columns.get(name, name)), data.x[name])
    if is_compute_law(draws.law):
        rows["C"] = ("6 N D", scale_of(draws.law, data.x)[0])
    rows["y"] = (str(data.columns.get("y", "y")), data.y)
    return pd.DataFrame.from_dict(
        {k: {"column": c, "min": v.min(), "median": np.median(v), "max": v.max()} for k, (c, v) in rows.items()},
        orient="index",
    ).rename_axis("quantity")


def parameter_table(draws: Draws, level: float) -> tuple[pd.DataFrame, str]:
    """Central value and interval of each parameter, and a sentence saying where the interval comes from."""
    center = pd.Series(draws.center, name="value")
    pct = f"{100 * level:g}%"
    if draws.n_draws >= 2:
        out = pd.DataFrame({"value": center}).join(draws.interval(level))
        return out.rename_axis("param"), f"{pct} equal-tailed interval over {draws.n_draws} draws"
    if hasattr(draws, "covariance"):
        table = draws.table()
        z = NormalDist().inv_cdf(0.5 + level / 2)
        table["lo"] = table["value"] - z * table["stderr"]
        table["hi"] = table["value"] + z * table["stderr"]
        return table, (
            f"a point fit: {pct} interval = value ± {z:.2f} Gauss-Newton standard errors (local and asymptotic; "
            "a bootstrap or a posterior gives honest intervals)"
        )
    out = pd.DataFrame({"value": center, "lo": np.nan, "hi": np.nan})
    return out.rename_axis("param"), "a single draw: no interval"


def default_targets(draws: Draws, data: Data | None) -> pd.DataFrame | None:
    """Runs 10x and 100x the largest run in every input, when no targets are given."""
    if data is None:
        return None
    scale, _ = scale_of(draws.law, data.x)
    i = int(np.argmax(scale))
    return pd.DataFrame({name: data.x[name][i] * np.array([10.0, 100.0]) for name in draws.law.inputs})


def targets_frame(draws: Draws, targets) -> pd.DataFrame:
    """Targets (a DataFrame, a dict of arrays or a list of dicts) as a frame of the law's inputs."""
    if isinstance(targets, pd.DataFrame):
        frame = targets
    elif isinstance(targets, Mapping):
        frame = pd.DataFrame({k: np.atleast_1d(v) for k, v in targets.items()})
    elif isinstance(targets, list | tuple) and all(isinstance(t, Mapping) for t in targets):
        frame = pd.DataFrame(list(targets))
    else:
        raise DataError(
            f"targets must be a DataFrame, a dict of arrays or a list of dicts of {', '.join(draws.law.inputs)}; "
            f"got {type(targets).__name__}"
        )
    missing = [k for k in draws.law.inputs if k not in frame.columns]
    if missing:
        raise DataError(f"targets lack {missing}; law {draws.law.name!r} needs {', '.join(draws.law.inputs)}")
    frame = frame[list(draws.law.inputs)].astype(np.float64)
    return frame.set_axis(pd.RangeIndex(1, len(frame) + 1, name="target"), axis=0)


def extrapolation_table(draws: Draws, targets, level: float) -> pd.DataFrame:
    """Predicted y at each target: the inputs, compute (for laws of N and D), `y`, `lo` and `hi`."""
    frame = targets_frame(draws, targets)
    x = {k: frame[k].to_numpy() for k in draws.law.inputs}
    out = frame.copy()
    if is_compute_law(draws.law):
        out["C"] = scale_of(draws.law, x)[0]
    predicted = band(draws, x, level)
    for column in predicted:
        out[column] = predicted[column].to_numpy()
    return out


def compute_optimal_table(draws: Draws, compute, level: float) -> pd.DataFrame | None:
    """Compute-optimal N, D, tokens per parameter and loss at each budget, with `_lo`/`_hi` over the draws.

    `scalejax.compute_optimal` (closed form for Chinchilla, a differentiable
    1-D search for any other law of N and D); None for laws of other inputs.
    """
    if set(draws.law.inputs) != {"N", "D"}:
        return None
    compute = np.asarray(compute, dtype=np.float64)
    return _compute_optimal(draws, compute, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, level=level)


@dataclasses.dataclass(frozen=True)
class Backtest:
    """A holdout backtest: fit on the smaller runs, predict the largest.

    Attributes:
        table: one row per held-out run: its inputs, `scale`, `observed`, `y`, `lo`, `hi`, `rel_error`.
        train_scale: the largest scale (compute or first input) fitted.
        n_train, n_holdout: runs fitted and runs held out.
        method: how the draws were refitted, in words.
        refit: `"bootstrap"` or `"point fit"`.
    """

    table: pd.DataFrame
    train_scale: float
    n_train: int
    n_holdout: int
    method: str
    refit: str

    def summary(self) -> dict[str, float]:
        """Mean and largest absolute relative error, and the share of held-out runs inside the interval."""
        t = self.table
        out = {
            "mean_abs_rel_error": float(np.mean(np.abs(t["rel_error"]))),
            "max_abs_rel_error": float(np.max(np.abs(t["rel_error"]))),
        }
        if t["lo"].notna().all():
            out["share_inside_interval"] = float(np.mean((t["observed"] >= t["lo"]) & (t["observed"] <= t["hi"])))
        return out


def backtest_table(draws: Draws, data: Data, level: float, *, holdout: float = 0.2, max_resamples: int = 200):
    """Refit on all but the largest runs and predict the held-out ones; None when too few runs remain.

    The runs whose scale (compute, or the first input) is among the top
    `holdout` share are held out, with any run within 1% of the smallest
    held-out scale, so a whole top budget leaves together. A `Bootstrap` is refitted with the same scheme (at most
    `max_resamples` resamples); any other draws with a point fit. The refit
    starts from the distinct optima the full fit's start grid reached (as the
    bootstrap warm-starts its resamples), or from the law's grid for draws
    without a fit. A stand-in until scalejax's own backtest analysis lands.
    """
    from .._bootstrap import Bootstrap, bootstrap
    from .._fit import Fit, fit

    law = draws.law
    live = data.weights > 0
    scale, _ = scale_of(law, data.x)
    n_hold = max(1, round(holdout * int(live.sum())))
    threshold = np.sort(scale[live])[-n_hold]
    # Runs within 1% of the threshold count as ties: a budget's runs rarely have exactly equal 6 N D.
    held = live & (scale >= threshold - 0.01 * abs(threshold))
    train = live & ~held
    if int(train.sum()) < law.n_params + 1 or not held.any():
        return None
    # The smaller runs alone (not zero weights): resampling schemes then see only them, whole groups included.
    train_data = dataclasses.replace(
        data,
        x={k: v[train] for k, v in data.x.items()},
        y=data.y[train],
        weights=data.weights[train],
        groups=None if data.groups is None else data.groups[train],
        index=None if data.index is None else data.index[train],
    )
    full = draws if isinstance(draws, Fit) else getattr(draws, "fit", None)
    full = full if isinstance(full, Fit) else None
    loss = full.loss if full is not None else "huber"
    starts = _distinct_optima(full) if full is not None else None
    started = f"from the {len(starts)} distinct optima of the full fit" if starts is not None else "from the law's grid"
    if isinstance(draws, Bootstrap):
        n = min(draws.n_resamples, max_resamples)
        refit = bootstrap(law, train_data, n=n, seed=0, scheme=draws.scheme, level=level, loss=loss, starts=starts)
        method = f"bootstrap, {draws.scheme}, {refit.n_converged}/{n} resamples converged, seed 0, {started}"
    else:
        refit = fit(law, train_data, loss=loss, starts=starts)
        method = f"point fit {started}" + ("" if isinstance(draws, Fit) else "; these draws are not refitted")
    x = {k: v[held] for k, v in data.x.items()}
    table = pd.DataFrame({k: v for k, v in x.items()})
    table["scale"] = scale[held]
    table["observed"] = data.y[held]
    table = table.join(band(refit, x, level))
    table["rel_error"] = table["y"] / table["observed"] - 1.0
    return Backtest(
        table.sort_values("scale").reset_index(drop=True),
        float(scale[train].max()),
        int(train.sum()),
        int(held.sum()),
        method,
        "bootstrap" if isinstance(draws, Bootstrap) else "point fit",
    )


def _distinct_optima(full, k: int = 16) -> pd.DataFrame:
    """Up to k distinct converged optima of a fit's starts, best first (natural values): cheap, broad
    starts for a refit, as the bootstrap warm-starts its resamples."""
    from ..solvers import CONVERGED

    sol = full.solution
    ok = np.flatnonzero((sol.status == CONVERGED) & np.isfinite(sol.objective))
    chosen = [np.asarray(full.u[0])]
    for i in ok[np.argsort(sol.objective[ok])]:
        if len(chosen) >= k:
            break
        if all(np.max(np.abs(sol.u[i] - c)) > 1e-3 for c in chosen):
            chosen.append(sol.u[i])
    samples = Draws(full.law, np.array(chosen)).samples
    # Optima at a bound's edge (E = exp(-800) = 0.0) cannot be passed back as natural starts.
    inside = np.all([[p.contains(v) for v in samples[p.name]] for p in full.law.params], axis=0)
    return samples[inside & np.all(np.isfinite(samples.to_numpy()), axis=1)].reset_index(drop=True)


def diagnostics_table(draws: Draws) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Lane outcomes (`item`, `value`) and, when the draws carry `.diagnostics`, a per-parameter table."""
    from .._bootstrap import Bootstrap
    from .._fit import Fit

    rows: list[tuple[str, object]] = [("draws", draws.n_draws)]
    fit_ = draws if isinstance(draws, Fit) else getattr(draws, "fit", None)
    if isinstance(draws, Bootstrap):
        rows += [
            ("bootstrap scheme", draws.scheme),
            ("resamples drawn", draws.n_resamples),
            ("resamples converged", draws.n_converged),
            ("resamples excluded (no lane converged)", draws.n_failed),
        ]
    if isinstance(fit_, Fit):
        rows += [
            ("starts of the full-data fit", fit_.n_starts),
            ("starts converged", fit_.n_converged),
            ("starts at the best optimum", fit_.n_at_best),
            ("objective at the optimum", f"{fit_.objective:.6g}"),
        ]
        rows += [(f"starts ended {name}", n) for name, n in fit_.status_counts.items() if name != "converged"]
    samples = draws.samples.to_numpy()
    rows.append(("draws with non-finite parameters", int(np.sum(~np.all(np.isfinite(samples), axis=1)))))
    per_param = None
    extra = getattr(draws, "diagnostics", None)
    if isinstance(extra, Mapping):
        columns = {}
        for key, value in extra.items():
            if isinstance(value, Mapping):
                columns[str(key)] = pd.Series({str(k): _scalar(v) for k, v in value.items()})
            elif isinstance(value, pd.Series):
                columns[str(key)] = value.map(_scalar)
            else:
                rows.append((str(key), _scalar(value)))
        if columns:
            per_param = pd.DataFrame(columns).rename_axis("param")
    return pd.DataFrame(rows, columns=["item", "value"]), per_param


def lane_outcomes(draws: Draws) -> dict[str, int]:
    """Counts for the diagnostics bar chart: bootstrap resamples, else the fit's starts by status."""
    from .._bootstrap import Bootstrap
    from .._fit import Fit

    if isinstance(draws, Bootstrap):
        return {"converged": draws.n_converged, "excluded": draws.n_failed}
    if isinstance(draws, Fit):
        counts = {name: 0 for name in STATUS_NAMES.values()}
        counts.update(draws.status_counts)
        return counts
    samples = draws.samples.to_numpy()
    finite = int(np.sum(np.all(np.isfinite(samples), axis=1)))
    return {"finite draws": finite, "non-finite draws": draws.n_draws - finite}


def _scalar(value):
    """A number as a float; anything else (arrays of several values, text) as text, never reduced silently."""
    arr = np.asarray(value)
    if arr.size == 1 and arr.dtype.kind in "biuf":
        return float(arr.reshape(()))
    return np.array2string(arr, precision=4) if arr.dtype.kind in "biuf" else str(value)
