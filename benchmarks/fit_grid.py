"""Time scalejax's 4,500-start Chinchilla grid fit against SciPy L-BFGS-B loops, in one process, on the real data.

Rows of the table:
- scalejax, the default global strategy (`strategy="auto"`: screen every start,
  polish the best distinct ones until the best optimum is reached from 3),
  first call (tracing and XLA compilation included) and warm (best of `--repeats`).
- scalejax polishing every start (`strategy="all"`), first call and warm.
- SciPy L-BFGS-B with the analytic gradient and tight tolerances, one start at a
  time: the strongest SciPy baseline, reaching the same optimum as scalejax.
- SciPy L-BFGS-B with the analytic gradient and SciPy's default tolerances:
  faster, but stops early on this tiny summed objective.
- SciPy L-BFGS-B with finite-difference gradients and default tolerances on a
  `scipy.special.logsumexp` objective, as published replications do. Timed on a
  random subset of the starts and extrapolated linearly (said so in the output).

The SciPy code is the reference in `tests/helpers.py`, the same code the
acceptance tests check against scalejax.

Usage:
    python benchmarks/fit_grid.py                 # all 4,500 starts
    python benchmarks/fit_grid.py --starts 500    # a seeded subset, for a quick run
    python benchmarks/fit_grid.py --out benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np
import scipy

import scalejax as sj

ROOT = Path(__file__).resolve().parents[1]
# The SciPy baseline is the tested reference, so the code timed here is the code checked there.
sys.path.insert(0, str(ROOT / "tests"))
from helpers import EPOCH_CHINCHILLA, chinchilla_arrays, scipy_fit  # noqa: E402

AT_BEST_RTOL = 1e-6


def fit_with_strategy(frame, starts, strategy: str):
    """`sj.fit(...)` with the global `strategy`.

    Until `sj.fit` takes `strategy=` (the hook in `_fit.py`), this is `fit()`'s
    own body with `solve_starts` in place of `solve_lanes`: the same data
    validation, result and diagnostics, so it times what the fit will do.
    """
    if "strategy" in inspect.signature(sj.fit).parameters:
        return sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", starts=starts, strategy=strategy)
    from scalejax._fit import Fit, best_lane, make_data, make_starts
    from scalejax._objectives import make_loss
    from scalejax.solvers import SolverConfig, solve_starts

    law, loss = sj.laws.get("chinchilla"), make_loss("huber", 1e-3)
    data = make_data(law, frame, {"N": "N", "D": "D"}, "loss", None, None, loss)
    u0 = make_starts(law, starts)
    with jax.enable_x64(True):
        solution = solve_starts(
            law,
            loss,
            u0,
            data.weights,
            data.x,
            data.target(loss.log_scale),
            strategy=strategy,
            config=SolverConfig(max_steps=500),
            desc="fit starts",
        )
    result = Fit(law, data, loss, solution, best_lane(law, solution))
    result.diagnose()
    return result


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=None, help="use a seeded random subset of K grid starts")
    parser.add_argument(
        "--fd-starts",
        type=int,
        default=200,
        help="starts timed for the finite-difference SciPy row, extrapolated to all (default 200; 0 for all)",
    )
    parser.add_argument(
        "--scipy-starts",
        type=int,
        default=0,
        help="starts timed for the analytic-gradient SciPy rows, extrapolated to all (default 0: all)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="warm scalejax calls; the best is reported")
    parser.add_argument("--seed", type=int, default=0, help="seed of the start subsets")
    parser.add_argument("--data", type=Path, default=EPOCH_CHINCHILLA, help="Epoch's svg_extracted_data.csv")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"data file {args.data} not found; pass --data PATH to Epoch's svg_extracted_data.csv")
    if args.starts is not None and args.starts < 1:
        parser.error("--starts must be a positive number")
    if args.repeats < 1 or args.fd_starts < 0:
        parser.error("--repeats must be >= 1 and --fd-starts >= 0")
    return args


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def load_average() -> str:
    """Other work on the machine slows the single-threaded SciPy loops most; say how busy it was."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def machine_info() -> dict[str, str]:
    return {
        "CPU count": str(os.cpu_count()),
        "load average (1, 5, 15 min) at start": load_average(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": f"{jax.__version__} ({jax.default_backend()}, {jax.device_count()} device(s))",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "scalejax": sj.__version__,
    }


def main(argv=None) -> str:
    args = parse_args(argv)
    info = machine_info()
    frame = sj.datasets.read_epoch_chinchilla(args.data)
    arrays = chinchilla_arrays(frame)
    grid = sj.laws.chinchilla.start_grid()
    rng = np.random.default_rng(args.seed)
    if args.starts is None or args.starts >= len(grid):
        starts, natural = grid, None  # None: scalejax's own default grid, as a user would call it
    else:
        starts = grid[np.sort(rng.choice(len(grid), size=args.starts, replace=False))]
        natural = np.concatenate([np.exp(starts[:, :3]), starts[:, 3:]], axis=1)
    n = len(starts)

    def log(text):
        print(text, file=sys.stderr, flush=True)

    rows = []  # (name, seconds for all starts, starts timed, objectives per timed start, note)
    fits = {}
    for strategy, label in (("auto", "default global strategy"), ("all", "every start polished")):
        log(f"scalejax, strategy={strategy!r}: first call on {n} starts ...")
        t_first, fit = timed(lambda strategy=strategy: fit_with_strategy(frame, natural, strategy))
        note = f"{fit.n_starts} starts polished"
        rows.append(
            (
                f"scalejax ({label}, strategy={strategy!r}), first call incl. compilation",
                t_first,
                n,
                fit.solution.objective,
                note,
            )
        )
        warm = []
        for _ in range(args.repeats):
            t, fit = timed(lambda strategy=strategy: fit_with_strategy(frame, natural, strategy))
            warm.append(t)
        fits[strategy] = (min(warm), warm, fit)
        rows.append(
            (
                f"scalejax ({label}, strategy={strategy!r}), warm, best of {args.repeats}",
                min(warm),
                n,
                fit.solution.objective,
                note,
            )
        )
    t_warm, warm, fit = fits["auto"]

    n_sp = n if args.scipy_starts == 0 or args.scipy_starts >= n else args.scipy_starts
    sp_starts = starts if n_sp == n else starts[np.sort(rng.choice(n, size=n_sp, replace=False))]
    sp_note = "" if n_sp == n else f"timed on a random {n_sp} of the {n} starts, total extrapolated x{n / n_sp:.2f}"
    for tight, label in ((True, "tight tol. (ftol 1e-15, gtol 1e-12)"), (False, "default tol.")):
        log(f"SciPy L-BFGS-B, analytic gradient, {label}: {n_sp} starts ...")
        t, ref = timed(lambda tight=tight: scipy_fit(sp_starts, *arrays, tight=tight))
        rows.append((f"SciPy L-BFGS-B, analytic gradient, {label}", t * n / n_sp, n_sp, ref.objectives, sp_note))

    n_fd = n if args.fd_starts == 0 or args.fd_starts >= n else args.fd_starts
    fd_starts = starts if n_fd == n else starts[np.sort(rng.choice(n, size=n_fd, replace=False))]
    log(f"SciPy L-BFGS-B, finite differences, default tolerances: {n_fd} starts ...")
    t, ref = timed(lambda: scipy_fit(fd_starts, *arrays, tight=False, gradient="finite"))
    note = "" if n_fd == n else f"timed on a random {n_fd} of the {n} starts, total extrapolated x{n / n_fd:.2f}"
    rows.append(
        (
            "SciPy L-BFGS-B, finite differences, default tol. (published practice)",
            t * n / n_fd,
            n_fd,
            ref.objectives,
            note,
        )
    )

    best = min(float(np.min(r[3])) for r in rows)
    lines = [
        f"# Chinchilla grid fit: scalejax vs SciPy ({n} starts, {len(frame)} points)",
        "",
        "Data: Epoch AI's digitised Chinchilla runs, 5 highest losses dropped. Objective: Huber (delta 1e-3) on",
        "log loss, summed. Starts: Hoffmann et al.'s grid"
        + ("" if natural is None else f" (a random {n} of 4,500, seed {args.seed})")
        + ". SciPy runs one start at a time in a Python loop; scalejax runs all starts in one compiled call.",
        f"'at best' counts starts ending within {AT_BEST_RTOL:g} relative of the lowest objective any row reached ({best:.12g}).",
        "",
        "| method | ms total | ms per start | vs scalejax default, warm | best objective | starts at best | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, seconds, _, objectives, note in rows:
        objectives = np.asarray(objectives)
        at_best = int(np.sum(objectives <= best * (1 + AT_BEST_RTOL)))
        lines.append(
            f"| {name} | {seconds * 1e3:,.0f} | {seconds * 1e3 / n:.3f} | {seconds / t_warm:.1f}x "
            f"| {np.min(objectives):.12g} | {at_best}/{len(objectives)} | {note} |"
        )
    lines += [
        "",
        f"scalejax default (auto) warm calls (s): {', '.join(f'{t:.4f}' for t in warm)}; every start polished (all): "
        f"{', '.join(f'{t:.3f}' for t in fits['all'][1])}.",
        f"Best objective, auto {fits['auto'][2].objective!r}, all {fits['all'][2].objective!r}: relative difference "
        f"{(fits['auto'][2].objective - best) / best:+.1e} from the lowest any row reached.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        f"| load average (1, 5, 15 min) at end | {load_average()} |",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out is not None:
        args.out.write_text(table)
        log(f"wrote {args.out}")
    return table


if __name__ == "__main__":
    main()
