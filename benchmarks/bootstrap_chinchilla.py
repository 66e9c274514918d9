"""Time a 4,000-resample Chinchilla bootstrap: scalejax against SciPy loops on the same resamples, in one process.

Rows of the table (all on the real Chinchilla data, 240 runs, the same
multinomial resamples drawn once from the seed, every fit warm-started at the
full-data Huber optimum):
- scalejax, first call: the resample fits including tracing and compilation
  (the full-data fit is done before, and timed on its own line).
- scalejax, warm: best of `--repeats` further calls.
- scalejax with the same law written as a custom `@sj.law` with no log form
  and no derivatives (JAX differentiates the plain formula).
- SciPy BFGS with the analytic gradient, one resample at a time: the
  procedure of published replications (Besiroglu et al. 2024).
- `scipy.optimize.least_squares` (trf, loss="huber", f_scale=delta, analytic
  Jacobian), one resample at a time: the strongest SciPy option.

It also checks the acceptance criteria of the bootstrap: every resample
converged; each resample's objective within 1e-9 relative of a long-run
reference (SciPy L-BFGS-B with tight tolerances started from the better of the
two answers); medians within 1e-4 and 95% interval ends within 1% of the
SciPy loop's on the same resamples.

Usage:
    python benchmarks/bootstrap_chinchilla.py                      # 4,000 resamples, SciPy on all
    python benchmarks/bootstrap_chinchilla.py --scipy-resamples 400 # SciPy on the first 400 only
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np
import scipy
import scipy.optimize
import scipy.special

import scalejax as sj
import scalejax._bootstrap
from scalejax._bootstrap import resample_weights
from scalejax._resample import Resampler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import EPOCH_CHINCHILLA, TIGHT_OPTIONS, chinchilla_arrays, chinchilla_objective  # noqa: E402

DELTA = 1e-3
X = {"N": "N", "D": "D"}


@sj.law(
    params=[
        sj.Param("E", lower=0, grid=(1.0,)),
        sj.Param("A", lower=0, grid=(100.0,)),
        sj.Param("B", lower=0, grid=(100.0,)),
        sj.Param("alpha", grid=(0.3,)),
        sj.Param("beta", grid=(0.3,)),
    ],
    inputs=["N", "D"],
)
def custom_chinchilla(p, x):
    """Chinchilla as a user would type it: no log form, no derivatives."""
    return p["E"] + p["A"] / x["N"] ** p["alpha"] + p["B"] / x["D"] ** p["beta"]


def to_fitting_space(params: dict) -> np.ndarray:
    """Natural parameters -> the reference's `(log E, log A, log B, alpha, beta)`."""
    return np.array([np.log(params["E"]), np.log(params["A"]), np.log(params["B"]), params["alpha"], params["beta"]])


def residuals_and_jacobian(u, logN, logD, logy):
    e, a, b, alpha, beta = u
    terms = np.stack([np.full_like(logN, e), a - alpha * logN, b - beta * logD])
    top = terms.max(axis=0)
    expd = np.exp(terms - top)
    total = expd.sum(axis=0)
    share = expd / total
    r = top + np.log(total) - logy
    jac = np.stack([share[0], share[1], share[2], -share[1] * logN, -share[2] * logD], axis=1)
    return r, jac


def scipy_loops(indices, u_start, logN, logD, logy):
    """Per-resample BFGS (analytic gradient) and least_squares (trf, huber) loops, timed."""
    out = {}
    t0 = time.perf_counter()
    us, fs = [], []
    for idx in indices:
        args = (logN[idx], logD[idx], logy[idx], DELTA)
        res = scipy.optimize.minimize(
            chinchilla_objective, u_start, args=args, jac=True, method="BFGS", options={"gtol": 1e-10}
        )
        us.append(res.x)
        fs.append(res.fun)
    out["bfgs"] = (time.perf_counter() - t0, np.array(us), np.array(fs))

    t0 = time.perf_counter()
    us, fs = [], []
    for idx in indices:
        ln, ld, ly = logN[idx], logD[idx], logy[idx]
        res = scipy.optimize.least_squares(
            lambda u, ln=ln, ld=ld, ly=ly: residuals_and_jacobian(u, ln, ld, ly)[0],
            u_start,
            jac=lambda u, ln=ln, ld=ld, ly=ly: residuals_and_jacobian(u, ln, ld, ly)[1],
            method="trf",
            loss="huber",
            f_scale=DELTA,
            ftol=1e-12,
            xtol=1e-12,
            gtol=1e-12,
        )
        us.append(res.x)
        fs.append(chinchilla_objective(res.x, ln, ld, ly, DELTA)[0])
    out["least_squares"] = (time.perf_counter() - t0, np.array(us), np.array(fs))
    return out


def long_run_reference(indices, candidates, logN, logD, logy):
    """Tight L-BFGS-B from the better of the candidate optima of each resample: its objective."""
    ref = []
    for k, idx in enumerate(indices):
        args = (logN[idx], logD[idx], logy[idx], DELTA)
        start = min(candidates, key=lambda c: chinchilla_objective(c[k], *args)[0])[k]
        res = scipy.optimize.minimize(
            chinchilla_objective, start, args=args, jac=True, method="L-BFGS-B", options=TIGHT_OPTIONS
        )
        ref.append(min(res.fun, chinchilla_objective(start, *args)[0]))
    return np.array(ref)


def summary(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.median(samples, axis=0), np.quantile(samples, 0.025, axis=0), np.quantile(samples, 0.975, axis=0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="resamples")
    parser.add_argument("--scipy-resamples", type=int, default=None, help="SciPy loops on the first K resamples only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not EPOCH_CHINCHILLA.is_file():
        sys.exit(f"real Chinchilla data not found at {EPOCH_CHINCHILLA}")

    frame = sj.datasets.read_epoch_chinchilla(EPOCH_CHINCHILLA)
    logN, logD, logy = chinchilla_arrays(frame)
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; python {platform.python_version()}, "
        f"jax {jax.__version__} ({jax.device_count()} {jax.devices()[0].platform} device(s)), scipy {scipy.__version__}, scalejax {sj.__version__}"
    )

    t0 = time.perf_counter()
    full = sj.fit("chinchilla", frame, x=X, y="loss", progress=False)
    t_fit = time.perf_counter() - t0
    print(f"full-data fit, 4,500 starts, first call: {t_fit:.2f} s")

    t0 = time.perf_counter()
    first = sj.bootstrap(full, n=args.n, seed=args.seed, progress=False)
    t_first = time.perf_counter() - t0
    warm = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        boot = sj.bootstrap(full, n=args.n, seed=args.seed, progress=False)
        warm.append(time.perf_counter() - t0)
    np.testing.assert_array_equal(first.u, boot.u)
    t_warm = min(warm)
    print(
        f"scalejax: first {t_first:.2f} s, warm {t_warm:.3f} s = {1e3 * t_warm / args.n:.3f} ms/resample; "
        f"{boot.n_converged}/{args.n} converged, {len(boot.warm_starts)} warm start(s), {boot.n_rescued} rescued"
    )

    custom_full = sj.fit(custom_chinchilla, frame, x=X, y="loss", starts=full.params, progress=False)
    sj.bootstrap(custom_full, n=args.n, seed=args.seed, progress=False)
    t0 = time.perf_counter()
    custom = sj.bootstrap(custom_full, n=args.n, seed=args.seed, progress=False)
    t_custom = time.perf_counter() - t0
    print(
        f"custom law: warm {t_custom:.3f} s = {t_custom / t_warm:.2f}x the built-in; {custom.n_converged}/{args.n} converged"
    )

    # The same resamples as index arrays (rows repeated by their multinomial count).
    if hasattr(scalejax._bootstrap, "Resampler"):  # the bootstrap makes its weights block by block from the seed
        counts = Resampler(full.data, "rows", args.seed).weights(0, args.n).astype(int)
    else:  # the bootstrap draws them all at once from one generator
        counts = resample_weights(full.data, args.n, "rows", np.random.default_rng(args.seed)).astype(int)
    m = args.n if args.scipy_resamples is None else min(args.scipy_resamples, args.n)
    indices = [np.repeat(np.arange(len(logy)), c) for c in counts[:m]]
    u_start = to_fitting_space(full.params)
    loops = scipy_loops(indices, u_start, logN, logD, logy)

    samples = boot.samples[["E", "A", "B", "alpha", "beta"]].to_numpy()
    ours = np.column_stack([np.log(samples[:, :3]), samples[:, 3:]])[:m]
    f_ours = np.array(
        [chinchilla_objective(ours[k], logN[i], logD[i], logy[i], DELTA)[0] for k, i in enumerate(indices)]
    )
    ref = long_run_reference(indices, [ours, loops["least_squares"][1], loops["bfgs"][1]], logN, logD, logy)
    rel = (f_ours - ref) / ref
    print(f"objective vs long-run reference: max rel excess {rel.max():.2e}; within 1e-9: {np.sum(rel <= 1e-9)}/{m}")

    natural = lambda u: np.column_stack([np.exp(u[:, :3]), u[:, 3:]])  # noqa: E731
    med, lo, hi = summary(natural(ours))
    rows = []
    for name, (seconds, us, fs) in loops.items():
        s_med, s_lo, s_hi = summary(natural(us))
        worse = np.sum((fs - ref) / ref > 1e-9)
        rows.append((name, seconds, m, worse))
        print(
            f"{name}: {1e3 * seconds / m:.2f} ms/resample = {1e3 * seconds / m / (1e3 * t_warm / args.n):.1f}x scalejax warm; "
            f"{worse}/{m} above reference by >1e-9; median rel diff {np.max(np.abs(s_med / med - 1)):.1e}, "
            f"interval ends rel diff {max(np.max(np.abs(s_lo / lo - 1)), np.max(np.abs(s_hi / hi - 1))):.1e}"
        )


if __name__ == "__main__":
    main()
