"""Every reason not to take a report's numbers at face value, as one list of sentences.

The report opens with these (its "Caveats" section), and the command line
prints the same list as `warning:` lines: the estimate's own warnings
(`Draws.warnings`), parameters at a bound with the share of draws there,
repeated runs, excluded or under-determined resamples, poor R-hat and
effective sample sizes, how far each forecast and the compute-optimal
frontier reach beyond the runs, and what the backtest's refit warned about.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._data import Data
from .._draws import Draws, map_rows
from .._errors import describe_rows
from .._fit import NO_EFFECT
from . import _tables as tables

__all__ = ["Caveat", "bound_shares", "duplicate_runs", "of_backtest", "of_draws", "of_forecasts", "of_frontier"]


@dataclasses.dataclass(frozen=True)
class Caveat:
    """One reason for caution: what it is about (`topic`, e.g. "resamples") and a self-contained sentence."""

    topic: str
    text: str

    def __str__(self) -> str:
        return self.text


def kind_of(draws: Draws) -> str:
    """What the draws are, from their statistics: "fit", "bootstrap", "posterior" or "draws"."""
    stats = draws.stats
    if "n_resamples" in stats:
        return "bootstrap"
    if "likelihood" in stats:
        return "posterior"
    if "n_starts" in stats:
        return "fit"
    return "draws"


# ---------------------------------------------------------------------------------------------- bounds


def _effects(u, law, x, w, log_scale):
    """Root mean square change of the fitted values (weighted points) per unit step of each parameter in the
    solver's space, at one draw `u`: `(p,)`. Near an open bound the transform is flat and this vanishes."""

    def fitted(v):
        p = law.unpack(v)
        return law.log_predict(p, x) if log_scale else law.predict(p, x)

    jac = jax.jacfwd(fitted)(u)
    return jnp.sqrt(jnp.sum(w[:, None] * jac**2, axis=0) / jnp.sum(w))


# Draws per call of the effect computation: bounds the (draws, points, parameters) Jacobian in memory.
_CHUNK_ENTRIES = 4_000_000
# Decades (a factor 1.023) an input must lie outside the fitted runs' range for a forecast inside the
# runs' compute to be called out: a held-out slice of the table itself sits at 0.
MIN_OUTSIDE = 0.01


def bound_shares(draws: Draws, data: Data | None = None) -> pd.DataFrame:
    """For each parameter with a bound, how many draws sit at it.

    A draw sits at a bound when its step in the solver's space no longer
    moves the fitted values (less than `scalejax._fit.NO_EFFECT`, on log y, or
    relative to the root mean square of y on the raw scale: the rule `fit`
    uses) and it lies nearer that bound than the central estimate does (or the
    central estimate sits there too). Such a draw's value is where the solver
    stopped on the flat end of the transform, a limit, not an estimate: a
    bootstrap resample whose runs prefer `E -> 0` stops at `E = 1e-11`.
    Without data, a draw sits at a bound when it lies within 1e-8 of it
    relative to the central estimate's distance from it.

    Args:
        draws: any draws.
        data: the runs (default: the draws' own).

    Returns:
        One row per parameter with a bound (index `param`): `bound` (the bound
        the draws sit at, the nearer one when they sit at neither), `side`
        (`lower` or `upper`), `n_at`, `share` (of the draws) and `center_at`
        (whether the central estimate sits there). `attrs["mask"]` is the
        `(S, n_params)` boolean array of which draw sits at a bound of which
        parameter.
    """
    law = draws.law
    data = draws.data if data is None else data
    u = np.asarray(draws.u, dtype=np.float64)
    values = draws.samples.to_numpy()
    center = np.asarray([draws.center[k] for k in law.param_names])
    tiny, center_tiny = _no_effect(draws, data, u)
    mask = np.zeros(values.shape, dtype=bool)
    rows = {}
    for j, p in enumerate(law.params):
        sides = [(side, bound) for side, bound in (("lower", p.lower), ("upper", p.upper)) if bound is not None]
        if not sides:
            continue
        with np.errstate(all="ignore"):
            gaps = np.stack([np.abs(values[:, j] - bound) for _, bound in sides])  # (sides, S)
            center_gaps = np.array([abs(center[j] - bound) for _, bound in sides])
        nearest, center_nearest = np.argmin(gaps, axis=0), int(np.argmin(center_gaps))
        best = None
        for i, (side, bound) in enumerate(sides):
            if tiny is None:
                center_at = bool(center_gaps[i] <= 1e-8 * max(1.0, abs(bound)))
                at = gaps[i] <= 1e-8 * (center_gaps[i] if center_gaps[i] > 0 else 1.0)
            else:
                center_at = bool(center_tiny[j]) and i == center_nearest
                at = tiny[:, j] & (nearest == i) & ((gaps[i] < center_gaps[i]) | center_at)
            mask[:, j] |= at
            row = {"bound": bound, "side": side, "n_at": int(np.sum(at)), "center_at": center_at}
            if best is None or row["n_at"] > best["n_at"] or (row["n_at"] == best["n_at"] and i == center_nearest):
                best = row
        best["share"] = best["n_at"] / max(1, draws.n_draws)
        rows[p.name] = best
    columns = ["bound", "side", "n_at", "share", "center_at"]
    out = pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("param")
    out.attrs["mask"] = mask
    return out


def _no_effect(draws: Draws, data: Data | None, u: np.ndarray):
    """`(S, p)` whether each draw's parameter steps leave the fitted values unmoved, and the same `(p,)` at the
    central estimate; `(None, None)` without data (or when the law cannot be evaluated on it)."""
    if data is None or not np.all(np.isfinite(u)):
        return None, None
    law = draws.law
    live = data.weights > 0
    x = {k: np.asarray(v, dtype=np.float64)[live] for k, v in data.x.items()}
    w = np.asarray(data.weights, dtype=np.float64)[live]
    log_scale = bool(draws.log_scale)
    size = 1.0 if log_scale else float(np.sqrt(np.average(data.y[live] ** 2, weights=w)))
    rows = np.vstack([np.asarray(draws.center_u)[None, :], u])
    chunk = max(1, _CHUNK_ENTRIES // max(1, w.size * law.n_params))
    parts = [map_rows(_effects, rows[i : i + chunk], law, x, w, log_scale) for i in range(0, rows.shape[0], chunk)]
    effect = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
    tiny = effect <= NO_EFFECT * size  # NaN (a draw the law cannot evaluate) counts as not tiny
    return tiny[1:], tiny[0]


def _bound_caveats(draws: Draws, shares: pd.DataFrame, level: float) -> list[str]:
    out = []
    if draws.n_draws < 2:
        return out  # a point fit's bound is in its own warnings
    tail = (1 - level) / 2
    for name, row in shares.iterrows():
        if row["n_at"] == 0:
            continue
        text = (
            f"{name} is at its {row['side']} bound {row['bound']:g} in {row['n_at']:,} of {draws.n_draws:,} draws "
            f"({100 * row['share']:.1f}%): in those the data do not hold it away from the bound, so their value is "
            "a limit, not an estimate"
        )
        if row["share"] > tail:
            end = "lower" if row["side"] == "lower" else "upper"
            text += (
                f"; the {100 * level:g}% interval's {end} end is set by them (read it as 'down to the bound'), "
                "and forecasts that depend on it inherit that"
            )
        out.append(text)
    return out


# ---------------------------------------------------------------------------------------------- data


def duplicate_runs(data: Data | None, y_name: str = "y") -> str | None:
    """A sentence about runs that repeat the same inputs and y (as reading the data warns), or None."""
    if data is None:
        return None
    groups = {} if data.groups is None else {"__group": np.asarray(data.groups).astype(str)}
    table = pd.DataFrame({**{k: np.asarray(v) for k, v in data.x.items()}, "__y": data.y, **groups})
    dup = table.duplicated(keep=False).to_numpy()
    if not dup.any():
        return None
    index = data.index if data.index is not None else pd.RangeIndex(data.n)
    name = getattr(index, "name", None) or "row"
    return (
        f"{int(dup.sum())} runs repeat the same inputs and {y_name} ({describe_rows(index[dup], row_name=str(name))}): "
        "each copy counts as a separate run, so the intervals are narrower than the distinct runs justify; "
        "drop the copies unless they are genuine repeats"
    )


# ---------------------------------------------------------------------------------------------- the estimate


def of_draws(
    draws: Draws,
    data: Data | None = None,
    *,
    level: float | None = None,
    shares: pd.DataFrame | None = None,
    with_warnings: bool = True,
    with_duplicates: bool = True,
) -> list[Caveat]:
    """The caveats of an estimate: its warnings, parameters at a bound, repeated runs, excluded or
    under-determined resamples, a fragile optimum, poor R-hat and effective sample sizes.

    Args:
        draws: any draws.
        data: the runs (default: the draws' own).
        level: the interval level (default: the draws').
        shares: `bound_shares(draws, data)`, when already computed.
        with_warnings: include `draws.warnings` (the command line leaves out those it already printed).
        with_duplicates: include repeated runs (idem).

    Returns:
        A list of `Caveat`.
    """
    data = draws.data if data is None else data
    level = draws.level if level is None else level
    kind = kind_of(draws)
    stats = draws.stats
    out: list[Caveat] = []
    if with_duplicates:
        repeated = duplicate_runs(data, tables.y_name(draws, data))
        if repeated:
            out.append(Caveat("data", repeated))
    per_param = _per_param_diagnostics(draws)
    warnings_ = list(draws.warnings)
    if per_param:  # the detailed sentences below replace the posterior's summary ones
        warnings_ = [w for w in warnings_ if not w.startswith(("R-hat ", "effective sample size "))]
    if with_warnings:
        out += [Caveat(kind, w) for w in warnings_]
    said = " ".join(draws.warnings)
    if stats.get("n_failed") and "did not converge" not in said:
        out.append(
            Caveat(
                kind,
                f"{stats['n_failed']:,} of {stats['n_resamples']:,} resamples did not converge and are excluded "
                "from the draws; if they differ from the others (a flatter valley, a bound), the intervals are too "
                "narrow",
            )
        )
    under = stats.get("n_underdetermined")
    if under and "under-determined" not in said and "fewer distinct" not in said:
        out.append(
            Caveat(
                kind,
                f"{int(under):,} of {stats.get('n_resamples', draws.n_draws):,} resamples have fewer distinct runs "
                f"than the law's {draws.law.n_params} parameters: their fits are not determined by their runs",
            )
        )
    if kind == "fit" and stats.get("n_starts", 0) > 1 and stats.get("n_at_best") == 1:
        out.append(
            Caveat(
                kind,
                f"only 1 of {stats['n_starts']:,} polished starts reached the best optimum: the fit is fragile, and a "
                "better optimum may exist that no start found; give more starts or starts nearer the data",
            )
        )
    out += [Caveat(kind, text) for text in per_param]
    if draws.is_point:
        out.append(
            Caveat(
                kind,
                "a point fit: its intervals are local Gauss-Newton approximations, which can be far too narrow for "
                "a law fitted to few runs; a bootstrap (--bootstrap N) or a posterior gives honest ones",
            )
        )
    if shares is None:
        shares = bound_shares(draws, data)
    out += [Caveat(kind, text) for text in _bound_caveats(draws, shares, level)]
    return out


def _per_param_diagnostics(draws: Draws) -> list[str]:
    """Sentences naming the parameters whose R-hat or effective sample size fails its threshold."""
    stats = draws.stats
    rhat = stats.get("rhat") or stats.get("r_hat")
    ess = stats.get("ess")
    out = []
    if isinstance(rhat, dict) and rhat:
        bad = {k: float(v) for k, v in rhat.items() if np.isfinite(v) and v > 1.01}
        if bad:
            listed = ", ".join(f"{k} ({v:.3f})" for k, v in sorted(bad.items(), key=lambda kv: -kv[1]))
            out.append(
                f"R-hat above 1.01 for {listed}: the chains disagree about them, so their intervals are not "
                "reliable; run longer chains or more warmup"
            )
    if isinstance(ess, dict) and ess:
        floor = 100 * int(stats.get("chains", 1) or 1)
        bad = {k: float(v) for k, v in ess.items() if np.isfinite(v) and v < floor}
        if bad:
            listed = ", ".join(f"{k} ({v:.0f})" for k, v in sorted(bad.items(), key=lambda kv: kv[1]))
            out.append(
                f"effective sample size below {floor} (100 per chain) for {listed}: the interval ends of those "
                "parameters are noisy; draw more"
            )
    if stats.get("divergences") and not any("divergent" in w for w in draws.warnings):
        out.append(f"{int(stats['divergences'])} divergent transitions: the sampler missed part of the posterior")
    return out


# ---------------------------------------------------------------------------------------------- forecasts


def _times(d: float) -> str:
    return f"{10**d:,.0f}x" if d >= 1 else f"{10**d:.2g}x"


def of_forecasts(table: pd.DataFrame, what: str = "compute") -> list[Caveat]:
    """One caveat per forecast beyond the largest run, or within its compute but with an input outside the
    fitted runs' range (`table` from `extrapolation_table`)."""
    out = []
    outside = table.attrs.get("outside", {})
    cal = table.attrs.get("calibration")
    for i, (name, d) in enumerate(zip(table.attrs.get("names", table.index), table["distance"], strict=True)):
        if not np.isfinite(d):
            continue
        if d <= 0:
            out += _inside_but_outside(name, what, {k: float(v[i]) for k, v in outside.items()}, cal)
            continue
        text = (
            f"the forecast at {name} is {d:.2f} decades ({_times(d)}) beyond the largest run's {what}: "
            "its intervals assume the law holds that far, and errors grow with the distance"
        )
        if d > tables.FRONTIER_REACH + 1e-9:
            text += f"; beyond {_times(tables.FRONTIER_REACH)} treat it as a guess, not a forecast"
        out.append(Caveat("forecast", text))
    note = str(table.attrs.get("calibration_note") or "")
    has_interval = not str(table.attrs.get("predictive", "")).startswith("no predictive")
    if out and has_interval and table.attrs.get("calibration") is None and note:
        out.append(
            Caveat(
                "forecast",
                f"the predictive intervals are not calibrated for extrapolation ({note.rstrip('.')}): they may "
                "miss runs beyond the data more often than their level says",
            )
        )
    return out


def _inside_but_outside(name, what: str, outside: dict[str, float], cal) -> list[Caveat]:
    """The caveat of a forecast within the runs' compute (or key) whose other inputs leave the fitted range."""
    parts = [
        f"{k} is {abs(o):.2f} decades ({_times(abs(o))}) {'beyond the largest' if o > 0 else 'below the smallest'}"
        " fitted run's"
        for k, o in outside.items()
        if abs(o) >= MIN_OUTSIDE
    ]
    if not parts:
        return []
    text = (
        f"the forecast at {name} is within the runs' {what}, but its {' and its '.join(parts)}: its intervals "
        "assume the law holds there, and a law tends to misfit first at its largest and smallest runs"
    )
    widened = getattr(cal, "input", None)
    if widened is not None and abs(outside.get(widened, 0.0)) >= MIN_OUTSIDE:
        text += f" (the calibration widens its predictive interval for its {widened})"
    return [Caveat("forecast", text)]


def of_frontier(table: pd.DataFrame | None, level: float) -> list[Caveat]:
    """The compute-optimal frontier's far end: its distance and its tokens per parameter there."""
    if table is None or table.empty:
        return []
    out = []
    groups = table["group"] if "group" in table.columns else pd.Series([None] * len(table))
    for label in pd.unique(groups):
        rows = table[(groups == label).to_numpy()] if label is not None else table
        far = rows.iloc[int(np.argmax(rows["compute"].to_numpy()))]
        d = float(far["distance"])
        if not np.isfinite(d) or d <= 0:
            continue
        of = f" for {label}" if label is not None else ""
        tpp = f"{far['tokens_per_param']:.3g}"
        if np.isfinite(far["tokens_per_param_lo"]) and far["tokens_per_param_lo"] != far["tokens_per_param_hi"]:
            tpp += f" [{far['tokens_per_param_lo']:.3g}, {far['tokens_per_param_hi']:.3g}] ({100 * level:g}%)"
        out.append(
            Caveat(
                "frontier",
                f"the compute-optimal frontier{of} reaches {far['compute']:.3g} FLOPs, {d:.2f} decades "
                f"({_times(d)}) beyond the largest run; there it gives {tpp} tokens per parameter. It is drawn "
                "dashed beyond the runs, and nothing in the runs checks it there",
            )
        )
    return out


def of_backtest(result, level: float) -> list[Caveat]:
    """What the backtest's refit warned about, and held-out runs the predictive interval missed too often."""
    if result is None:
        return []
    out = [Caveat("backtest", f"the backtest's refit on the smaller runs: {w}") for w in result.warnings]
    t = result.table
    if t["pred_lo"].notna().all() and len(t) >= 3:
        inside = int(((t["observed"] >= t["pred_lo"]) & (t["observed"] <= t["pred_hi"])).sum())
        n = len(t)
        # One-sided binomial test: as few inside as this has under 5% probability if the intervals were right.
        p = sum(math.comb(n, k) * level**k * (1 - level) ** (n - k) for k in range(inside + 1))
        if p < 0.05:
            out.append(
                Caveat(
                    "backtest",
                    f"only {inside} of {n} held-out runs fell inside the {100 * level:g}% predictive interval "
                    f"(chance {p:.2g} if the interval were right): the forecasts' intervals are too narrow for "
                    "extrapolation on these runs",
                )
            )
    return out
