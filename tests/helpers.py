"""Shared test helpers: the real Chinchilla data and an independent SciPy reference for its fit.

The reference is written with NumPy and SciPy only (no scalejax, no JAX), so
agreement with scalejax checks the law, the objective and the solver at once.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import scipy.special

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
EPOCH_CHINCHILLA = SHARED_DATA / "chinchilla_epoch" / "svg_extracted_data.csv"

# Order of the fitting-space vector used throughout the reference.
PARAM_NAMES = ("E", "A", "B", "alpha", "beta")

TIGHT_OPTIONS = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000, "maxfun": 20000, "maxcor": 20}


def chinchilla_frame():
    """Epoch AI's digitised Chinchilla runs (240 rows after dropping the 5 highest losses).

    Skips the calling test when `../shared/data` is absent (a clone of the project alone).
    """
    if not EPOCH_CHINCHILLA.is_file():
        pytest.skip(f"real Chinchilla data not found at {EPOCH_CHINCHILLA.resolve()} (../shared/data is absent)")
    import scalejax as sj

    return sj.datasets.read_epoch_chinchilla(EPOCH_CHINCHILLA)


def chinchilla_arrays(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(log N, log D, log loss)` as float64 arrays."""
    return tuple(np.log(frame[c].to_numpy(dtype=np.float64)) for c in ("N", "D", "loss"))


def chinchilla_objective(u, logN, logD, logy, delta: float = 1e-3) -> tuple[float, np.ndarray]:
    """The summed Huber objective of the Chinchilla law and its analytic gradient.

    Args:
        u: `(e, a, b, alpha, beta)` = `(log E, log A, log B, alpha, beta)`.
        logN, logD, logy: log model size, log tokens and log loss per point.
        delta: the Huber delta on the log loss.

    Returns:
        `(f, grad)` with `f = sum huber(delta, logsumexp(e, a - alpha logN, b - beta logD) - logy)`.
    """
    e, a, b, alpha, beta = (float(v) for v in u)
    terms = np.stack([np.full_like(logN, e), a - alpha * logN, b - beta * logD])
    top = terms.max(axis=0)
    expd = np.exp(terms - top)
    total = expd.sum(axis=0)
    pred = top + np.log(total)
    share = expd / total  # d pred / d term_k (softmax of the terms)
    r = pred - logy
    f = float(np.sum(scipy.special.huber(delta, r)))
    psi = np.clip(r, -delta, delta)  # huber'(r)
    grad = np.array(
        [
            np.sum(psi * share[0]),
            np.sum(psi * share[1]),
            np.sum(psi * share[2]),
            -np.sum(psi * share[1] * logN),
            -np.sum(psi * share[2] * logD),
        ]
    )
    if not np.isfinite(f):
        return np.inf, np.zeros(5)
    return f, grad


def chinchilla_objective_value(u, logN, logD, logy, delta: float = 1e-3) -> float:
    """The same objective written as replications do (`scipy.special.logsumexp`), without a gradient."""
    e, a, b, alpha, beta = u
    pred = scipy.special.logsumexp([np.full_like(logN, e), a - alpha * logN, b - beta * logD], axis=0)
    return float(np.sum(scipy.special.huber(delta, pred - logy)))


def to_natural(u) -> dict[str, float]:
    """Fitting-space vector `(log E, log A, log B, alpha, beta)` -> `{E, A, B, alpha, beta}`."""
    u = np.asarray(u, dtype=np.float64)
    return dict(zip(PARAM_NAMES, [*np.exp(u[:3]), *u[3:]], strict=True))


@dataclasses.dataclass(frozen=True)
class ScipyFit:
    """Best optimum over starts of the SciPy reference, with per-start results.

    Attributes:
        objective: the lowest final objective over starts.
        u: the fitting-space optimum `(log E, log A, log B, alpha, beta)` of that start.
        params: the same optimum on the natural scale, by name.
        best: index of the best start.
        objectives, us, success, nit: per-start final objective, optimum, SciPy success flag, iterations.
    """

    objective: float
    u: np.ndarray
    params: dict[str, float]
    best: int
    objectives: np.ndarray
    us: np.ndarray
    success: np.ndarray
    nit: np.ndarray


def scipy_fit(
    starts,
    logN,
    logD,
    logy,
    delta: float = 1e-3,
    tight: bool = True,
    gradient: str = "analytic",
) -> ScipyFit:
    """Run `scipy.optimize.minimize(method="L-BFGS-B")` from each start in a Python loop.

    Args:
        starts: `(S, 5)` fitting-space starts `(log E, log A, log B, alpha, beta)`.
        logN, logD, logy: log model size, log tokens and log loss per point.
        delta: the Huber delta on the log loss.
        tight: tight tolerances (ftol 1e-15, gtol 1e-12, up to 5000 iterations)
            instead of SciPy's defaults.
        gradient: `"analytic"` (`jac=True` with `chinchilla_objective`) or
            `"finite"` (SciPy's finite differences on the logsumexp objective,
            as published replications do).

    Returns:
        A `ScipyFit`.
    """
    starts = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    args = (np.asarray(logN, np.float64), np.asarray(logD, np.float64), np.asarray(logy, np.float64), delta)
    if gradient == "analytic":
        fun, jac = chinchilla_objective, True
    elif gradient == "finite":
        fun, jac = chinchilla_objective_value, None
    else:
        raise ValueError(f"gradient must be 'analytic' or 'finite', got {gradient!r}")
    options = TIGHT_OPTIONS if tight else {}
    n = starts.shape[0]
    objectives = np.empty(n)
    us = np.empty_like(starts)
    success = np.empty(n, dtype=bool)
    nit = np.empty(n, dtype=np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        for i, u0 in enumerate(starts):
            res = scipy.optimize.minimize(fun, u0, args=args, jac=jac, method="L-BFGS-B", options=options)
            objectives[i] = res.fun if np.isfinite(res.fun) else np.inf
            us[i] = res.x
            success[i] = res.success
            nit[i] = res.nit
    best = int(np.argmin(objectives))
    return ScipyFit(
        objective=float(objectives[best]),
        u=us[best].copy(),
        params=to_natural(us[best]),
        best=best,
        objectives=objectives,
        us=us,
        success=success,
        nit=nit,
    )


def run_script(tmp_path: Path, source: str, **env) -> str:
    """Run `source` as a script in a fresh Python process on the CPU (extra environment `env`); its stdout.

    Fails the calling test, with the end of the script's stderr, when it exits non-zero.
    """
    script = tmp_path / "run.py"
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "JAX_PLATFORMS": "cpu", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
