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
from .._draws import Draws, tails
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
    """The interval level: `level` if given, else the draws' own default."""
    level = draws.level if level is None else level
    tails(level)
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
    if draws.data is not None:
        return draws.data
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
    lo_q, hi_q = tails(level)
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
    if draws.is_point:
        table = pd.DataFrame({"value": center, "stderr": draws.stderr()}).join(draws.interval(level))
        z = NormalDist().inv_cdf(0.5 + level / 2)
        return table.rename_axis("param"), (
            f"a point fit: {pct} interval = ± {z:.2f} Gauss-Newton standard errors in the solver's unconstrained "
            "space, mapped back (so each stays within its parameter's bounds; local and asymptotic: a bootstrap or "
            "a posterior gives honest intervals)"
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
    """A holdout backtest (`scalejax.analysis.backtest` of the draws): fit on the smaller runs, predict the largest.

    Attributes:
        table: one row per held-out run: its inputs, `scale`, `observed`, `y`, `lo`, `hi`, `rel_error`.
        train_scale: the largest scale (compute or first input) fitted.
        n_train, n_holdout: runs fitted and runs held out.
        method: how the draws were refitted, in words.
    """

    table: pd.DataFrame
    train_scale: float
    n_train: int
    n_holdout: int
    method: str

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
    """Refit the draws on all but the largest runs and predict the held-out ones; None when too few runs remain.

    `scalejax.analysis.backtest` of the draws: the runs whose scale (compute,
    or the first input) is among the top `holdout` share are held out, with
    any run within 1% of the smallest held-out scale, so a whole top budget
    leaves together; the draws are made again on the rest as they were made
    (`Draws.refit`: a bootstrap with the same scheme and at most
    `max_resamples` resamples, a fit from the full fit's distinct optima).
    """
    from ..analysis import backtest

    law = draws.law
    by = "compute" if is_compute_law(law) else law.inputs[0]
    if draws.data is not data:
        draws = draws.with_data(data)
    live = int(np.sum(data.weights > 0))
    n_hold = max(1, round(holdout * live))
    if live - n_hold < law.n_params + 1:
        return None
    table = backtest(draws, by=by, holdout=n_hold, n_boot=max_resamples, level=level, tie_rtol=0.01, seed=0)
    summary = table.attrs["summary"]
    if summary["n_train"] < law.n_params + 1:
        return None
    inputs = list(law.inputs)
    frame = table[inputs].reset_index(drop=True)
    frame["scale"] = table["scale"].to_numpy()
    frame["observed"] = table["y"].to_numpy()
    frame["y"] = table["y_hat"].to_numpy()
    banded = draws.n_draws > 1 or draws.is_point
    frame["lo"] = table["y_lo"].to_numpy() if banded else np.nan
    frame["hi"] = table["y_hi"].to_numpy() if banded else np.nan
    frame["rel_error"] = table["rel_error"].to_numpy()
    return Backtest(frame, summary["train_scale"], summary["n_train"], summary["n_holdout"], summary["refit"])


def refit_kind(method: str) -> str:
    """The kind of a refit from its description ("point fit", "bootstrap", ...)."""
    return method.split(",")[0]


# Readable names of the estimates' statistics in the diagnostics table (others keep their key).
_STAT_LABELS = {
    "scheme": "bootstrap scheme",
    "seed": "seed",
    "n_resamples": "resamples drawn",
    "n_converged": "converged",
    "n_failed": "resamples excluded (no lane converged)",
    "n_rescued": "resamples rescued by another warm start",
    "n_points": "weighted points",
    "dof": "residual degrees of freedom",
    "n_starts": "starts",
    "n_at_best": "starts at the best optimum",
    "objective": "objective at the optimum",
    "residual_sd": "residual standard deviation (fitted scale)",
}


def diagnostics_table(draws: Draws) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The estimate's statistics (`item`, `value`) and, when it has per-parameter diagnostics, a table of them."""
    rows: list[tuple[str, object]] = [("draws", draws.n_draws), ("made by", draws.describe())]
    columns = {}
    for key, value, nested in _flat_stats(draws.stats):
        if isinstance(value, Mapping):
            if key == "status_counts":
                prefix = "starts of the full-data fit ended" if nested else "starts ended"
                rows += [(f"{prefix} {k}", _scalar(v)) for k, v in value.items() if k != "converged"]
            else:
                columns[key] = pd.Series({str(k): _scalar(v) for k, v in value.items()})
            continue
        label = _STAT_LABELS.get(key, key)
        if key == "n_converged":
            label = "starts converged" if "n_starts" in draws.stats or nested else "resamples converged"
        if nested and label == "starts":
            label = "starts of the full-data fit"
        rows.append((label, _scalar(value)))
    samples = draws.samples.to_numpy()
    rows.append(("draws with non-finite parameters", int(np.sum(~np.all(np.isfinite(samples), axis=1)))))
    per_param = pd.DataFrame(columns).rename_axis("param") if columns else None
    return pd.DataFrame(rows, columns=["item", "value"]), per_param


def _flat_stats(stats: Mapping):
    """`(key, value, nested)` of every statistic; a bootstrap's full-data fit's statistics follow, nested."""
    for key, value in stats.items():
        if key == "full_fit" and isinstance(value, Mapping):
            for k, v in value.items():
                yield k, v, True
        elif isinstance(value, np.ndarray) and value.size > 8:
            continue  # per-draw arrays (divergences by chain) are summarised elsewhere
        else:
            yield key, value, False


def lane_outcomes(draws: Draws) -> dict[str, int]:
    """Counts for the diagnostics bar chart: resamples, else starts by status, else finite draws."""
    stats = draws.stats
    if "n_resamples" in stats:
        return {"converged": stats["n_converged"], "excluded": stats["n_failed"]}
    if "status_counts" in stats:
        counts = {name: 0 for name in STATUS_NAMES.values()}
        counts.update(stats["status_counts"])
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
