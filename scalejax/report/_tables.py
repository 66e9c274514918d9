"""The numbers behind each report section, as DataFrames: data summary, parameters, forecasts,
compute-optimal frontier, backtest and diagnostics.

Each function takes any `Draws` (a `Fit`, a `Bootstrap`, a posterior, plain
draws; joint laws too) and the data where the section needs it. Forecasts and
the frontier come from `scalejax.analysis.extrapolate` and
`scalejax.compute_optimal`, so they carry the analysis' own predictive
intervals; every forecast is labelled with its extrapolation distance.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from statistics import NormalDist

import numpy as np
import pandas as pd

from .._data import Data
from .._draws import Draws, quantity_interval, tails
from .._errors import DataError, ScalejaxError
from .._joint import GROUP_INPUT, JointLaw
from ..analysis import compute_optimal as _compute_optimal
from ..analysis import extrapolate as _extrapolate
from ..analysis._calibrate import _outside
from ..solvers import STATUS_NAMES

__all__ = [
    "FLOPS_PER_PARAM_TOKEN",
    "FRONTIER_REACH",
    "Backtest",
    "Part",
    "backtest_table",
    "compute_optimal_table",
    "data_of",
    "data_summary",
    "diagnostics_table",
    "extrapolation_table",
    "level_of",
    "parameter_table",
    "parts",
    "scale_of",
]

# k in C = k N D: training FLOPs per parameter per token of a dense transformer.
FLOPS_PER_PARAM_TOKEN = 6.0
# How far beyond the largest run (decades of compute, or of the first input) the report forecasts by
# default: the frontier's far end and the larger default target. Past this a forecast is drawn grey and
# flagged: errors of a fitted law grow with the distance (an exponent off by 0.01 moves a forecast by
# 2% per decade), and at 1000x nothing in the runs constrains them.
FRONTIER_REACH = 2.0


def level_of(draws: Draws, level: float | None) -> float:
    """The interval level: `level` if given, else the draws' own default."""
    level = draws.level if level is None else level
    tails(level)
    return float(level)


def data_of(draws: Draws, data=None, *, needed_by: str | None = None) -> Data | None:
    """The data behind `draws`: `data` if given (a `Data` or a DataFrame with the fit's columns),
    else the data the draws carry.

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


def base_law(law):
    """The law each group follows (a joint law's base), else the law itself."""
    return law.base if isinstance(law, JointLaw) else law


def scale_of(law, x: Mapping[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """The horizontal axis of the report's plots: compute `6 N D` for laws of N and D, else the first input."""
    if is_compute_law(law):
        n = np.asarray(x["N"], dtype=np.float64)
        return FLOPS_PER_PARAM_TOKEN * n * np.asarray(x["D"], dtype=np.float64), "compute C = 6 N D (FLOPs)"
    first = law.inputs[0]
    return np.asarray(x[first], dtype=np.float64), first


def y_name(draws: Draws, data: Data | None) -> str:
    """The name of the fitted quantity: the CSV's y column when known, else `y`."""
    if data is not None and "y" in data.columns:
        return str(data.columns["y"])
    return str(draws.columns.get("y", "y"))


def axis_label(draws: Draws, data: Data | None) -> str:
    """The label of the horizontal axis: compute, or the first input named by its column."""
    law = base_law(draws.law)
    if is_compute_law(law):
        return scale_of(law, {"N": 1.0, "D": 1.0})[1]
    name = law.inputs[0]
    columns = data.columns if data is not None else draws.columns
    column = str(columns.get(name, name))
    return column if column == name else f"{column} (input {name})"


def center_draws(draws: Draws) -> Draws:
    """The central estimate as a batch of one."""
    return Draws(draws.law, np.asarray(draws.center_u)[None, :], columns=draws.columns)


def _predict(p, law, x):
    return {"y": law.predict(p, x)}


def band(draws: Draws, x: Mapping[str, np.ndarray], level: float) -> pd.DataFrame:
    """The law at points `x` (the law's own encoding: group codes, not labels): `y` at the central estimate,
    `lo` and `hi` its parameter interval (`scalejax._draws.quantity_interval`: percentiles over the draws that
    give a finite value, or the delta method of a point fit; NaN for a single draw without a covariance)."""
    x = {k: np.asarray(v, dtype=np.float64) for k, v in x.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a point where every draw fails is NaN, and shown so
        central, lo, hi, _ = quantity_interval(draws, _predict, draws.law, x, level=level)
    y = central["y"]
    if draws.n_draws < 2 and not draws.is_point:
        return pd.DataFrame({"y": y, "lo": np.full_like(y, np.nan), "hi": np.full_like(y, np.nan)})
    return pd.DataFrame({"y": y, "lo": lo["y"], "hi": hi["y"]})


# ---------------------------------------------------------------------------------------------- groups


@dataclasses.dataclass(frozen=True)
class Part:
    """One group of a joint law (its own draws of the base law and its runs), or the whole estimate.

    Attributes:
        label: the group's label, or None for a law without groups.
        draws: draws of the base law for this group (the draws themselves without groups).
        data: the group's runs (inputs of the base law), or None.
    """

    label: str | None
    draws: Draws
    data: Data | None


def parts(draws: Draws, data: Data | None) -> list[Part]:
    """The groups of a joint law, each as draws of its base law with its own runs; else one part."""
    law = draws.law
    if not isinstance(law, JointLaw):
        return [Part(None, draws, data)]
    out = []
    for code, label in enumerate(law.groups):
        sub = draws.select(law.base, law.group_indices(label))
        sub_data = None
        if data is not None:
            keep = np.asarray(data.x[GROUP_INPUT]) == code
            if not keep.any():
                continue
            sub_data = Data(
                x={k: np.asarray(v)[keep] for k, v in data.x.items() if k != GROUP_INPUT},
                y=data.y[keep],
                weights=data.weights[keep],
                groups=None if data.groups is None else data.groups[keep],
                index=None if data.index is None else data.index[keep],
                columns={k: v for k, v in data.columns.items() if k != GROUP_INPUT},
            )
        out.append(Part(str(label), sub, sub_data))
    return out


def group_labels(law, codes) -> np.ndarray:
    """Group labels (text) of integer codes of a joint law."""
    return np.asarray([str(g) for g in law.groups], dtype=object)[np.asarray(codes, dtype=np.float64).astype(int)]


# ---------------------------------------------------------------------------------------------- numbers


def data_summary(draws: Draws, data: Data | None) -> pd.DataFrame:
    """Range of each input, of compute and of y over the runs: columns `column`, `min`, `median`, `max`."""
    if data is None:
        return pd.DataFrame(columns=["column", "min", "median", "max"])
    rows = {}
    for name in draws.law.inputs:
        if name == GROUP_INPUT and isinstance(draws.law, JointLaw):
            continue
        rows[name] = (str(data.columns.get(name, name)), data.x[name])
    if is_compute_law(draws.law):
        rows["C"] = ("6 N D", scale_of(draws.law, data.x)[0])
    rows["y"] = (str(data.columns.get("y", "y")), data.y)
    return pd.DataFrame.from_dict(
        {k: {"column": c, "min": v.min(), "median": np.median(v), "max": v.max()} for k, (c, v) in rows.items()},
        orient="index",
    ).rename_axis("quantity")


def domain(param) -> str:
    """A parameter's range as text, e.g. `(0, inf)`."""
    lo = "-inf" if param.lower is None else f"{param.lower:g}"
    hi = "inf" if param.upper is None else f"{param.upper:g}"
    return f"({lo}, {hi})"


def parameter_table(draws: Draws, level: float, at_bound: pd.DataFrame | None = None) -> tuple[pd.DataFrame, str]:
    """Central value, interval and range of each parameter (with the share of draws at a bound when given),
    and a sentence saying where the interval comes from.

    Intervals come from `draws.interval`: percentiles over several draws, or
    for a point fit the delta method in the solver's unconstrained space,
    mapped back, so every interval lies inside its parameter's range.
    """
    names = list(draws.law.param_names)
    pct = f"{100 * level:g}%"
    out = pd.DataFrame({"value": pd.Series(draws.center)}, index=pd.Index(names, name="param"))
    if draws.n_draws >= 2 or draws.is_point:
        out = out.join(draws.interval(level))
    else:
        out["lo"], out["hi"] = np.nan, np.nan
    if draws.is_point:
        out["stderr"] = draws.stderr()
    out["range"] = [domain(p) for p in draws.law.params]
    if at_bound is not None and draws.n_draws > 1:
        out["at_bound"] = at_bound.reindex(names)["share"].fillna(0.0).to_numpy()
    if draws.n_draws >= 2:
        how = f"{pct} equal-tailed interval over the {draws.n_draws} draws ({draws.describe()})"
    elif draws.is_point:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        how = (
            f"a point fit: {pct} interval = ± {z:.2f} Gauss-Newton standard errors in the solver's unconstrained "
            "space, mapped back (so each stays within its parameter's range; local and asymptotic: a bootstrap "
            "or a posterior gives honest intervals)"
        )
    else:
        how = "a single draw: no interval"
    return out, how


def default_targets(draws: Draws, data: Data | None) -> pd.DataFrame | None:
    """Runs at 10x and 100x the largest run's scale (per group of a joint law), when no targets are given.

    For laws of N and D both grow by the same factor (sqrt(10), then 10), so
    compute grows 10x and 100x along the runs' own ratio of tokens to
    parameters; for other laws the first input grows 10x and 100x. Other
    inputs keep the largest run's values.
    """
    if data is None:
        return None
    law = draws.law
    frames = []
    for part in parts(draws, data):
        if part.data is None:
            continue
        base = part.draws.law
        scale, _ = scale_of(base, part.data.x)
        i = int(np.argmax(scale))
        grow = {"N": np.sqrt([10.0, 100.0]), "D": np.sqrt([10.0, 100.0])} if is_compute_law(base) else {}
        if not grow:
            grow = {base.inputs[0]: np.array([10.0, 100.0])}
        frame = pd.DataFrame({k: part.data.x[k][i] * grow.get(k, np.ones(2)) for k in base.inputs})
        if isinstance(law, JointLaw):
            frame[GROUP_INPUT] = part.label
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[list(law.inputs)] if frames else None


def targets_frame(draws: Draws, targets) -> pd.DataFrame:
    """Targets (a DataFrame, a dict of arrays or a list of dicts) as a frame of the law's inputs, numbered from 1.

    Inputs are read by name or by the fitted data's column name (`params` for `N`).
    A joint law's `group` column holds group labels.
    """
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
    law = draws.law
    # The fitted data's column names stand for the inputs they fed (a held-out slice of the fitted table).
    fed = {
        column: name
        for name, column in (draws.columns or {}).items()
        if isinstance(column, str) and name in law.inputs and name not in frame.columns and column in frame.columns
    }
    frame = frame.rename(columns=fed)
    missing = [k for k in law.inputs if k not in frame.columns]
    if missing:
        raise DataError(f"targets lack {missing}; law {law.name!r} needs {', '.join(law.inputs)}")
    if len(frame) == 0:
        raise DataError("targets has no rows; give at least one run to forecast")
    out = pd.DataFrame(index=pd.RangeIndex(1, len(frame) + 1, name="target"))
    for name in law.inputs:
        values = frame[name].to_numpy()
        if isinstance(law, JointLaw) and name == GROUP_INPUT:
            law.encode_input(name, pd.Series(values), column="group")  # unknown labels fail here, before any work
            out[name] = [str(v) for v in values]
            continue
        try:
            values = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"targets column {name!r} must hold numbers") from None
        if not np.all(np.isfinite(values)):
            raise DataError(f"targets column {name!r} has missing or infinite values")
        if name in law.positive_inputs and np.any(values <= 0):
            raise DataError(f"targets column {name!r} has non-positive values; law {law.name!r} needs {name} > 0")
        out[name] = values
    return out


def target_names(draws: Draws, frame: pd.DataFrame) -> list[str]:
    """A short name for each target: its inputs (`N=70B, D=1.4T`), with its group for a joint law."""
    law = draws.law
    names = []
    for _, row in frame.iterrows():
        parts_ = [f"{k}={short(k, row[k])}" for k in law.inputs if k != GROUP_INPUT or not isinstance(law, JointLaw)]
        name = ", ".join(parts_)
        if isinstance(law, JointLaw):
            name = f"{row[GROUP_INPUT]}: {name}"
        names.append(name)
    return names


def si(value: float) -> str:
    """A count in short form: 70B, 1.4T, 350M, 12K (3 significant digits; below 1,000 or from 1e15 as `.3g`)."""
    v = float(value)
    if 1e3 <= abs(v) < 1e15:
        for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(v) >= factor:
                return f"{v / factor:.3g}{suffix}"
    return f"{v:.3g}"


def short(name: str, value) -> str:
    """An input's value in a label: counts (N, D) in short form, anything else as `.3g`."""
    return si(value) if name in ("N", "D") else f"{float(value):.3g}"


def largest_scale(draws: Draws, data: Data | None) -> dict[str | None, float]:
    """The largest run's scale (compute, or the first input) overall (key None) and per group of a joint law."""
    if data is None:
        return {}
    out = {None: float(np.max(scale_of(draws.law, data.x)[0]))}
    if isinstance(draws.law, JointLaw):
        for part in parts(draws, data):
            out[part.label] = float(np.max(scale_of(part.draws.law, part.data.x)[0]))
    return out


def distance(scale, label, largest: dict) -> float:
    """Decades (log10) of `scale` beyond the largest run's scale (of the same group when there is one)."""
    top = largest.get(label, largest.get(None))
    if top is None or not top > 0:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.log10(float(scale) / top))


def predictive(draws: Draws, new, **kwargs) -> tuple[pd.DataFrame, str]:
    """`scalejax.analysis.extrapolate` of the draws, and how its predictive interval was made (a phrase).

    Draws without a noise scale get the parameter interval only (predictive
    columns NaN): a forecast of one run's value needs the noise.
    """
    has_noise = "sigma" in draws.noise and np.all(np.isfinite(draws.noise["sigma"]))
    table = _extrapolate(draws, new, noise=None if has_noise else 0.0, **kwargs)
    if not has_noise:
        table["y_pred_lo"], table["y_pred_hi"] = np.nan, np.nan
        return table, "no predictive interval: these draws carry no noise scale"
    calibrated = table.attrs.get("calibration") is not None
    return table, ("calibrated predictive interval" if calibrated else "predictive interval")


def calibration_text(table: pd.DataFrame, y: str) -> str:
    """What the calibration behind a table's predictive interval found, in a sentence (empty without one)."""
    cal = table.attrs.get("calibration")
    if cal is None:
        note = str(table.attrs.get("calibration_note") or "")
        if not note:
            return ""
        return (
            f"The predictive interval is not calibrated for extrapolation ({note.rstrip('.')}): it holds for runs "
            "like the fitted ones, and forecasts far beyond them may miss it more often than its level says."
        )
    folds = int(cal.folds["used"].sum()) if "used" in cal.folds else len(cal.folds)
    scale = f"log {y}" if cal.log_scale else y
    how = (
        f"Rolling backtests inside the data ({folds} folds: fit the runs below a cut-off in {cal.by}, forecast "
        "the rest)"
    )
    term = ""
    if cal.input_slope:
        gain = dict(cal.input_cv_gains).get(cal.input, float("nan"))
        lo, hi = (10.0**v for v in cal.input_range)
        term = (
            f" Forecasts of {cal.input} outside the fitted runs' range ({lo:.3g} to {hi:.3g}) add an error whose "
            f"standard deviation grows by {cal.input_slope:.3g} per decade of {cal.input} beyond it, on {scale} "
            f"(leave-one-fold-out gain {gain:.3g} nats)."
        )
    if cal.tau0 == 0 and cal.slope == 0:
        return (
            f"{how} found no growth of forecast errors with distance beyond the noise and parameter uncertainty "
            f"(leave-one-fold-out gain {cal.cv_gain:.3g} nats; more than 3 would widen it), so the predictive interval is "
            f"not widened by distance.{term}"
        )
    unit = "decade" if cal.distance_scale == "absolute" else f"{cal.lever:.3g} decades (the fitted range)"
    return (
        f"{how} found forecast errors growing with distance: the predictive interval adds an error of standard "
        f"deviation {cal.tau0:.3g} + {cal.slope:.3g} per {unit} beyond the largest run, on {scale} "
        f"(leave-one-fold-out gain {cal.cv_gain:.3g} nats).{term}"
    )


def extrapolation_table(draws: Draws, targets, level: float, data: Data | None = None) -> pd.DataFrame:
    """Forecasts at the targets: the inputs, compute (laws of N and D), `distance` (decades beyond the largest
    run), `y` at the central estimate, `lo`, `hi` (parameter interval) and `pred_lo`, `pred_hi` (predictive
    interval of one run's measured value, from `scalejax.analysis.extrapolate`), and `distance_<input>`
    when the calibration also widens by that input's decades outside the fitted runs' range.

    `attrs` hold `names` (a short name per target) and `predictive` (how the
    predictive interval was made).
    """
    frame = targets_frame(draws, targets)
    law = draws.law
    out = frame.copy()
    numeric = {k: frame[k].to_numpy() for k in law.inputs if not (isinstance(law, JointLaw) and k == GROUP_INPUT)}
    if is_compute_law(law):
        out["C"] = scale_of(law, numeric)[0]
    scale = scale_of(law, numeric)[0] if is_compute_law(law) else frame[law.inputs[0]].to_numpy(dtype=np.float64)
    largest = largest_scale(draws, data)
    labels = frame[GROUP_INPUT] if isinstance(law, JointLaw) else [None] * len(frame)
    out["distance"] = [distance(s, g, largest) for s, g in zip(scale, labels, strict=True)]
    try:
        table, how = predictive(draws, frame.reset_index(drop=True), level=level)
        out["y"] = table["y"].to_numpy()
        out["lo"], out["hi"] = table["y_lo"].to_numpy(), table["y_hi"].to_numpy()
        out["pred_lo"], out["pred_hi"] = table["y_pred_lo"].to_numpy(), table["y_pred_hi"].to_numpy()
        for column in (c for c in table.columns if c.startswith("distance_")):
            out[column] = table[column].to_numpy()  # an input's decades outside the fitted runs' range
        out.attrs["calibration"] = table.attrs.get("calibration")
        out.attrs["calibration_note"] = table.attrs.get("calibration_note", "")
    except ScalejaxError as err:  # some draws predict nothing finite there: the draws that do give the band
        x = dict(numeric)
        if isinstance(law, JointLaw):
            x[GROUP_INPUT] = law.encode_input(GROUP_INPUT, frame[GROUP_INPUT].reset_index(drop=True)).to_numpy()
        banded = band(draws, x, level)
        out["y"], out["lo"], out["hi"] = banded["y"].to_numpy(), banded["lo"].to_numpy(), banded["hi"].to_numpy()
        out["pred_lo"], out["pred_hi"] = np.nan, np.nan
        how = f"no predictive interval: {err}"
    out.attrs["names"] = target_names(draws, frame)
    out.attrs["predictive"] = how
    out.attrs["level"] = level
    out.attrs["outside"] = outside_inputs(draws, frame, data)
    return out


def outside_inputs(draws: Draws, frame: pd.DataFrame, data: Data | None) -> dict[str, np.ndarray]:
    """Signed decades of each target's inputs outside the fitted runs' range: `> 0` beyond the largest run's,
    `< 0` below the smallest's, 0 inside; for each positive input of the law that the runs vary (not a joint
    law's group codes, nor the first input of a law that is not one of compute, which `distance` measures).
    A joint law's targets are measured against their own group's runs.

    A forecast can leave the data along one input while its compute stays inside (an isoFLOP study's
    largest models); a law tends to misfit there first.
    """
    if data is None:
        return {}
    law = draws.law
    key = None if is_compute_law(law) else law.inputs[0]
    names = [k for k in law.inputs if k not in (key, GROUP_INPUT) and k in (law.positive_inputs or ())]
    labels = frame[GROUP_INPUT].astype(str).to_numpy() if isinstance(law, JointLaw) else None
    groups = parts(draws, data)
    out = {}
    for name in names:
        values = frame[name].to_numpy(dtype=np.float64)
        signed, measured = np.zeros(len(frame)), False
        for part in groups:
            fitted = np.asarray(part.data.x[name], dtype=np.float64)[part.data.weights > 0]
            if fitted.size == 0 or not (np.all(np.isfinite(fitted)) and np.all(fitted > 0)) or np.ptp(fitted) == 0:
                continue
            rows = np.ones(len(frame), dtype=bool) if labels is None else labels == part.label
            # The calibration's two-sided decades outside the range, signed: + beyond the largest, - below.
            decades = _outside(values[rows], (np.log10(fitted.min()), np.log10(fitted.max())))
            signed[rows] = np.where(values[rows] > fitted.max(), decades, -decades)
            measured = True
        if measured:
            out[name] = signed
    return out


def _budgets_frontier(part: Part, compute: np.ndarray, level: float) -> pd.DataFrame:
    table = _compute_optimal(part.draws, compute, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, level=level)
    try:
        pred, how = predictive(part.draws, None, compute=compute, level=level)
        table["loss_pred_lo"], table["loss_pred_hi"] = pred["y_pred_lo"].to_numpy(), pred["y_pred_hi"].to_numpy()
    except ScalejaxError as err:
        table["loss_pred_lo"], table["loss_pred_hi"] = np.nan, np.nan
        how = f"no predictive interval: {err}"
    table.attrs["predictive"] = how
    return table


def compute_optimal_table(draws: Draws, compute, level: float, data: Data | None = None) -> pd.DataFrame | None:
    """Compute-optimal N, D, tokens per parameter and loss at each budget, with `_lo`/`_hi` (parameter
    intervals), `loss_pred_lo`/`loss_pred_hi` (predictive interval of one run at the optimum) and `distance`
    (decades beyond the largest run); one block of rows per group of a joint law (column `group`).

    `scalejax.compute_optimal` (closed form for Chinchilla, a differentiable
    1-D search for any other law of N and D); None for laws of other inputs.
    """
    if set(base_law(draws.law).inputs) != {"N", "D"}:
        return None
    compute = np.atleast_1d(np.asarray(compute, dtype=np.float64))
    largest = largest_scale(draws, data)
    frames = []
    for part in parts(draws, data):
        table = _budgets_frontier(part, compute, level)
        table.insert(1, "distance", [distance(c, part.label, largest) for c in compute])
        if part.label is not None:
            table.insert(0, GROUP_INPUT, part.label)
        frames.append(table)
    out = pd.concat(frames, ignore_index=True)
    out.attrs["predictive"] = frames[0].attrs["predictive"]
    return out


@dataclasses.dataclass(frozen=True)
class Backtest:
    """A holdout backtest (`scalejax.analysis.backtest` of the draws): fit on the smaller runs, predict the largest.

    Attributes:
        table: one row per held-out run: its inputs, `scale`, `observed`, `y`, `lo`, `hi` (parameter interval),
            `pred_lo`, `pred_hi` (predictive interval), `rel_error`.
        train_scale: the largest scale (compute or first input) fitted.
        n_train, n_holdout: runs fitted and runs held out.
        method: how the draws were refitted, in words.
        warnings: what the refit warned about (a bound, an unidentified parameter...).
    """

    table: pd.DataFrame
    train_scale: float
    n_train: int
    n_holdout: int
    method: str
    warnings: tuple[str, ...] = ()

    def summary(self) -> dict[str, float]:
        """Mean and largest absolute relative error, and the share of held-out runs inside each interval."""
        t = self.table
        out = {
            "mean_abs_rel_error": float(np.mean(np.abs(t["rel_error"]))),
            "max_abs_rel_error": float(np.max(np.abs(t["rel_error"]))),
        }
        if t["lo"].notna().all():
            out["share_inside_interval"] = float(np.mean((t["observed"] >= t["lo"]) & (t["observed"] <= t["hi"])))
        if t["pred_lo"].notna().all():
            out["share_inside_predictive"] = float(
                np.mean((t["observed"] >= t["pred_lo"]) & (t["observed"] <= t["pred_hi"]))
            )
        return out


def backtest_table(draws: Draws, data: Data, level: float, *, holdout: float = 0.2, max_resamples: int = 200):
    """Refit the draws on all but the largest runs and predict the held-out ones; None when too few runs remain.

    `scalejax.analysis.backtest` of the draws: the runs whose scale (compute,
    or the first input) is among the top `holdout` share are held out, with
    any run within 1% of the smallest held-out scale, so a whole top budget
    leaves together; the draws are made again on the rest as they were made
    (`Draws.refit`: a bootstrap with the same scheme and at most
    `max_resamples` resamples, a fit from the full fit's distinct optima).
    What the refit warns about is kept in `Backtest.warnings`.
    """
    from .._data import DataWarning
    from .._fit import FitWarning
    from ..analysis import backtest

    law = draws.law
    by = "compute" if is_compute_law(law) else law.inputs[0]
    if draws.data is not data:
        draws = draws.with_data(data)
    live = int(np.sum(data.weights > 0))
    n_hold = max(1, round(holdout * live))
    if live - n_hold < law.n_params + 1:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = backtest(draws, by=by, holdout=n_hold, n_boot=max_resamples, level=level, tie_rtol=0.01, seed=0)
    notes = []
    for w in caught:
        if issubclass(w.category, FitWarning | DataWarning) or w.category.__name__ == "PosteriorWarning":
            notes.append(str(w.message))
        else:  # not the refit's finding: pass it on unchanged
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    summary = table.attrs["summary"]
    notes += [str(n) for n in summary.get("warnings", ())]
    if summary["n_train"] < law.n_params + 1:
        return None
    inputs = list(law.inputs)
    frame = table[inputs].reset_index(drop=True)
    if isinstance(law, JointLaw) and frame[GROUP_INPUT].dtype.kind in "biuf":
        frame[GROUP_INPUT] = group_labels(law, frame[GROUP_INPUT])
    frame["scale"] = table["scale"].to_numpy()
    frame["observed"] = table["y"].to_numpy()
    frame["y"] = table["y_hat"].to_numpy()
    banded = draws.n_draws > 1 or draws.is_point
    frame["lo"] = table["y_lo"].to_numpy() if banded else np.nan
    frame["hi"] = table["y_hi"].to_numpy() if banded else np.nan
    frame["pred_lo"] = table["y_pred_lo"].to_numpy()
    frame["pred_hi"] = table["y_pred_hi"].to_numpy()
    frame["rel_error"] = table["rel_error"].to_numpy()
    return Backtest(
        frame,
        summary["train_scale"],
        summary["n_train"],
        summary["n_holdout"],
        summary["refit"],
        tuple(dict.fromkeys(notes)),
    )


def refit_kind(method: str) -> str:
    """The kind of a refit from its description ("point fit", "bootstrap", ...)."""
    return method.split(",")[0]


# Readable names of the estimates' statistics in the diagnostics table (others keep their key).
_STAT_LABELS = {
    "scheme": "bootstrap scheme",
    "seed": "seed",
    "n_resamples": "resamples drawn",
    "n_converged": "converged",
    "n_failed": "resamples excluded (no start converged)",
    "n_rescued": "resamples where another warm start found a better optimum",
    "n_underdetermined": "resamples with fewer distinct runs than parameters",
    "n_points": "weighted points",
    "dof": "residual degrees of freedom",
    "n_screened": "starts",
    "n_starts": "starts polished",
    "n_at_best": "starts at the best optimum",
    "objective": "objective at the optimum",
    "residual_sd": "residual standard deviation (fitted scale)",
    "likelihood": "likelihood",
    "method": "sampler",
    "chains": "chains",
    "draws_per_chain": "draws per chain",
    "rhat_max": "largest R-hat",
    "ess_min": "smallest effective sample size",
    "divergences": "divergent transitions",
}


# Per-parameter diagnostics among the statistics, and their column names.
_PER_PARAM = {"rhat": "R-hat", "r_hat": "R-hat", "ess": "ESS", "ess_tail": "tail ESS"}


def diagnostics_table(draws: Draws) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The estimate's statistics (`item`, `value`) and, when it has per-parameter diagnostics (R-hat, ESS), a
    table of them (one row per parameter)."""
    rows: list[tuple[str, object]] = [("draws", draws.n_draws), ("made by", draws.describe())]
    columns = {}
    for key, value, nested in _flat_stats(draws.stats):
        if isinstance(value, Mapping):
            if key == "status_counts":
                prefix = "starts of the full-data fit ended" if nested else "starts ended"
                rows += [(f"{prefix} {k}", _scalar(v)) for k, v in value.items() if k != "converged"]
            elif key in _PER_PARAM:
                columns[_PER_PARAM[key]] = pd.Series({str(k): _scalar(v) for k, v in value.items()})
            elif "kind" in value:  # a model's summary (the noise model): its kind here, its numbers in the tables
                rows.append((("full-data fit: " if nested else "") + key.replace("_", " "), str(value["kind"])))
            continue
        label = _STAT_LABELS.get(key, key)
        if key == "n_converged":
            label = "starts converged" if "n_starts" in draws.stats or nested else "resamples converged"
        if nested:
            label = {"starts": "starts of the full-data fit"}.get(label, f"full-data fit: {label}")
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


def outcomes(draws: Draws) -> tuple[dict[str, int], str]:
    """Counts for the diagnostics chart and what they count: resamples, else starts by status, else draws."""
    stats = draws.stats
    if "n_resamples" in stats:
        counts = {"converged": int(stats["n_converged"]), "excluded (no start converged)": int(stats["n_failed"])}
        return counts, "resamples"
    if "status_counts" in stats:
        counts = {name: 0 for name in STATUS_NAMES.values()}
        counts.update({k: int(v) for k, v in stats["status_counts"].items()})
        return counts, "starts of the fit"
    samples = draws.samples.to_numpy()
    finite = int(np.sum(np.all(np.isfinite(samples), axis=1)))
    return {"finite": finite, "not finite": draws.n_draws - finite}, "draws"


def _scalar(value):
    """A number as a float; anything else (arrays of several values, text) as text, never reduced silently."""
    arr = np.asarray(value)
    if arr.size == 1 and arr.dtype.kind in "biuf":
        return float(arr.reshape(()))
    return np.array2string(arr, precision=4) if arr.dtype.kind in "biuf" else str(value)
