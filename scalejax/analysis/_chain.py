"""Two-step prediction: a first law's output is a second law's input, with both steps' uncertainty carried by the draws.

The parameter interval chains the two laws' draws; the predictive interval
also lets a new run's step-1 value scatter (its noise, and its calibrated
extra error beyond the data) before step 2 maps it, and adds step 2's own
noise and extra error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._draws import Draws, law_inputs, map_draws, map_rows, tails
from .._errors import ScalejaxError
from ._calibrate import _numeric_dict, calibration_of
from ._extrapolate import extra_noise

__all__ = ["chain_predict"]


def chain_predict(
    first: Draws,
    second: Draws,
    new,
    *,
    link: str | None = None,
    level: float = 0.95,
    noise=True,
    calibration="auto",
    n_noise: int = 4000,
    seed: int = 0,
) -> pd.DataFrame:
    """Predict through two fitted laws: `y = second(first(new))`, e.g. (N, D) -> task loss -> accuracy.

    Draw i of `first` feeds draw i of `second` (both are independent fits, so
    any pairing is a draw from the joint uncertainty); with different numbers
    of draws the first min(S1, S2) of each are used. The central value chains
    the two central estimates (`Draws.center`).

    The predictive interval simulates, for each pair of draws `s` and replicate `r`,

        mid_sr = first_s(x) (.) e1_sr,   e1 ~ step 1's noise at x (+ its calibrated extra error at x's distance)
        y_sr   = second_s(mid_sr) (.) e2_sr,   e2 ~ step 2's noise (+ its extra error at the central mid's distance)

    where `(.)` adds on each step's fitted scale (log for the log-scale losses,
    raw for `squared`). Step 1's noise is the scatter of a run's actual value
    around the first law: it goes through step 2, so a steep step 2 magnifies
    it; step 2's own noise is the scatter around the second law at a given
    input. Each step's noise is its draws' own (`Draws.noise_at`), and its
    extra error comes from its calibration (`scalejax.analysis.calibration_of`:
    step 1 ordered by compute, step 2 by its input, in the direction the
    chained values leave its data).

    Args:
        first: draws of the first law (a `Fit`, `Bootstrap` or posterior).
        second: draws of the second law.
        new: the first law's inputs (a DataFrame or dict), plus any other
            inputs of the second law.
        link: the second law's input that receives the first law's output;
            by default its only input.
        level: interval level.
        noise: True (each step's own noise draws), False (no noise: the predictive
            interval is the parameter interval, widened by the calibrations only), or a
            pair of standard deviations `(step 1, step 2)` on each step's fitted scale.
        calibration: `"auto"` (each step's default calibration), None (uncalibrated), or a
            pair `(step 1, step 2)` of `"auto"`, `Calibration`s or Nones. Step 1's default
            orders its runs by compute. Step 2's default orders its runs by compute too when
            its data kept the runs' model size and tokens (columns `N` and `D` of the table
            it was fitted to, `Data.sizes`) and the new points have them: its folds fit the
            checkpoints below a compute cut-off and forecast the ones above, which measures
            how far the accuracy-from-loss relation of small models carries to a large one,
            and a new point's distance is its compute beyond the largest fitted checkpoint.
            Otherwise (or when that backtest cannot be run) step 2 orders its runs by its own
            input (task loss) and forecasts towards lower loss. On the OLMo ladder chain the
            compute ordering covers 15 of 16 held-out targets, the task-loss one 9
            (benchmarks/RESULTS.md).
        n_noise: simulated observations per point, at least.
        seed: seed of the simulated noise.

    Returns:
        A DataFrame, one row per row of `new`: `mid`, `mid_lo`, `mid_hi` (the
        first law's prediction, parameter interval), `mid_pred_lo`, `mid_pred_hi`
        (step 1's predictive interval), `y`, `lo`, `hi` (through both steps,
        parameters only), `pred_lo`, `pred_hi` (through both steps, with both
        steps' noise and calibration), `distance` (step 1's extrapolation
        distance) and `distance_second` (step 2's: in decades of compute when
        it is calibrated by compute, else at the central `mid`).
        `attrs["calibration"]` holds both steps' calibrations, `attrs["calibration_note"]`
        why one is missing.

    Example:
        >>> import scalejax as sj
        >>> # step1 = sj.bootstrap("chinchilla", ladder, ...); step2 = sj.bootstrap("sigmoid_floor", ..., loss="squared")
        >>> # sj.analysis.chain_predict(step1, step2, {"N": [7e9], "D": [4e12]})

    References:
        Bhagia et al. 2024, Establishing Task Scaling Laws via Compute-Efficient Model Ladders (two-step prediction).
    """
    if link is None:
        if len(second.law.inputs) != 1:
            raise ScalejaxError(
                f"law {second.law.name!r} takes inputs {second.law.inputs}; name the one fed by the first law with link="
            )
        link = second.law.inputs[0]
    if link not in second.law.inputs:
        raise ScalejaxError(f"link {link!r} is not an input of law {second.law.name!r} {second.law.inputs}")
    lo_q, hi_q = tails(level)
    x1 = law_inputs(first.law, new, first.columns)
    # The second law's other inputs come from `new`; the link is a placeholder until the first law fills it.
    probe = new.assign(**{link: 1.0}) if isinstance(new, pd.DataFrame) else {**dict(new), link: 1.0}
    x2 = {k: v for k, v in law_inputs(second.law, probe, second.columns).items() if k != link}
    s = min(first.n_draws, second.n_draws)
    u1 = np.vstack([first.center_u[None, :], first.u[:s]])
    u2 = np.vstack([second.center_u[None, :], second.u[:s]])
    out = map_draws(_chained, (first.law, second.law), (u1, u2), first.law, second.law, x1, x2, link)
    mid, y = np.asarray(out["mid"]), np.asarray(out["y"])
    m = mid.shape[1]
    centre1 = mid[0]

    sigma1, sigma2 = _step_noise(noise, first, second, x1, {**x2, link: centre1}, s, m)
    cal1, cal2 = _pair(calibration, "calibration")
    extra1, d1, c1, note1 = extra_noise(first, new, cal1)
    # Step 2's distance at the chained value (its input), or at the key a calibration by compute
    # (or by another column) reads from `new`.
    at2 = {**_numeric_dict(new), **x1, **x2, link: centre1}
    why2 = ""
    if isinstance(cal2, str) and cal2 == "auto":
        cal2, why2 = _second_calibration(second, at2)
    extra2, d2, c2, note2 = extra_noise(second, at2, cal2)
    note2 = "; ".join(n for n in (why2, note2) if n)

    reps = max(1, -(-int(n_noise) // s))
    rng = np.random.default_rng(seed)
    eps1 = _draw(rng, first, sigma1, extra1, reps)
    mids = mid[1:]
    mid_obs = mids[None] * np.exp(eps1) if first.log_scale else mids[None] + eps1
    rows = np.concatenate([np.tile(second.u[:s], (reps, 1)), mid_obs.reshape(reps * s, m)], axis=1)
    y_obs = map_rows(_second_at, rows, second.law, x2, link).reshape(reps, s, m)
    eps2 = _draw(rng, second, sigma2, extra2, reps)
    with np.errstate(divide="ignore", invalid="ignore"):
        y_sim = (np.log(y_obs) + eps2) if second.log_scale else (y_obs + eps2)
    y_sim = y_sim.reshape(-1, m)
    with np.errstate(all="ignore"):
        pred_lo, pred_hi = np.nanquantile(y_sim, [lo_q, hi_q], axis=0)
    if second.log_scale:
        pred_lo, pred_hi = np.exp(pred_lo), np.exp(pred_hi)
    mid_pred = mid_obs.reshape(-1, m)
    table = pd.DataFrame(
        {
            "mid": centre1,
            "mid_lo": np.quantile(mids, lo_q, axis=0),
            "mid_hi": np.quantile(mids, hi_q, axis=0),
            "mid_pred_lo": np.quantile(mid_pred, lo_q, axis=0),
            "mid_pred_hi": np.quantile(mid_pred, hi_q, axis=0),
            "y": y[0],
            "lo": np.quantile(y[1:], lo_q, axis=0),
            "hi": np.quantile(y[1:], hi_q, axis=0),
            "pred_lo": pred_lo,
            "pred_hi": pred_hi,
            "distance": d1,
            "distance_second": d2,
        },
        index=new.index if isinstance(new, pd.DataFrame) else None,
    )
    table.attrs["level"] = level
    table.attrs["calibration"] = (c1, c2)
    table.attrs["calibration_note"] = "; ".join(
        f"step {i}: {n}" for i, n in ((1, note1), (2, note2)) if n and "calibration=None" not in n
    )
    return table


def _second_calibration(second: Draws, at) -> tuple:
    """Step 2's default: by compute when its data kept the runs' N and D and the points have them, else "auto".

    Returns `(calibration, note)`: a `Calibration` or `"auto"`, and why a calibration by compute was not used.
    """
    base = second.point_fit
    if {"N", "D"} <= set(second.law.inputs) or base is None or base.data is None:
        return "auto", ""  # a law of N and D is ordered by compute already; no data: "auto" says why
    if not {"N", "D"} <= set(base.data.sizes) or not {"N", "D"} <= set(at):
        return "auto", ""
    cal, note = calibration_of(second, by="compute", direction=1)
    if cal is None:
        return "auto", f"not calibrated by compute ({note}), by its input instead"
    return cal, ""


def _pair(value, name: str) -> tuple:
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ScalejaxError(f"{name} must be one value or a pair (step 1, step 2), got {len(value)} values")
        return tuple(value)
    return value, value


def _step_noise(noise, first: Draws, second: Draws, x1, x2, s: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Each step's noise sd per draw and point, `(s, m)` each."""
    if noise is True:
        return tuple(_own_noise(d, x, s, m) for d, x in ((first, x1), (second, x2)))
    if noise is False or noise is None:
        return np.zeros((s, m)), np.zeros((s, m))
    pair = _pair(noise, "noise")
    out = []
    for value in pair:
        value = float(value)
        if not (np.isfinite(value) and value >= 0):
            raise ScalejaxError(f"noise standard deviations must be finite and >= 0, got {value}")
        out.append(np.full((s, m), value))
    return tuple(out)


def _own_noise(draws: Draws, x, s: int, m: int) -> np.ndarray:
    if "sigma" not in draws.noise:
        raise ScalejaxError(
            f"these {type(draws).__name__} draws of law {draws.law.name!r} carry no noise scale; "
            "pass noise=(sd1, sd2) or noise=False"
        )
    return draws.noise_at(x)[:s]


def _draw(rng: np.random.Generator, draws: Draws, sigma: np.ndarray, extra: np.ndarray, reps: int) -> np.ndarray:
    """`(reps, s, m)` noise: each draw's own scale (Student-t where it has `nu`) plus the extra error."""
    s, m = sigma.shape
    nu = draws.noise.get("nu")
    if nu is not None:
        eps = rng.standard_t(np.asarray(nu)[None, :s, None], size=(reps, s, m))
    else:
        eps = rng.standard_normal((reps, s, m))
    out = sigma[None] * eps
    if np.any(extra > 0):
        out = out + extra[None, None, :] * rng.standard_normal((reps, s, m))
    return out


def _chained(p1, p2, law1, law2, x1, x2, link):
    mid = law1.predict(p1, x1)
    return {"mid": mid, "y": law2.predict(p2, {**x2, link: mid})}


def _second_at(row, law, x2, link):
    """The second law at one draw's parameters and one simulated vector of first-step values (one row: both)."""
    p = law.n_params
    return law.predict(law.unpack(row[:p]), {**x2, link: row[p:]})
