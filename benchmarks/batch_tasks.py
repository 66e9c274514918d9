"""Time fit_many (one sigmoid per downstream task, hundreds of tasks, one batched call) against a SciPy loop.

Synthetic tasks of different lengths (8 to 40 points each) follow the OLMo
ladder's step-2 sigmoid `Acc(L) = a / (1 + exp(-k (L - L0))) + b` with noise.
Every method fits every task from the same starts (the law's 48-point grid)
with least squares on the raw accuracy, in one process:
- scalejax `fit_many`, first call (includes compilation) and warm (best of `--repeats`);
- SciPy `curve_fit` (MINPACK LM, finite-difference Jacobian: what a user writes)
  from every start, task by task;
- SciPy `least_squares(method="lm")` with the analytic Jacobian, from every start.
The SciPy loops are timed on `--scipy-tasks` tasks and extrapolated per task
(said so in the output). Agreement: tasks whose best objective matches scalejax's
to 1e-6 relative.

Usage:
    python benchmarks/batch_tasks.py --tasks 300 --out-md /tmp/batch.md
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import jax
import numpy as np
import pandas as pd
import scipy
from scipy.optimize import OptimizeWarning, curve_fit, least_squares

import scalejax as sj


def make_tasks(n_tasks: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for t in range(n_tasks):
        a, b, k, l0 = rng.uniform(0.4, 0.7), rng.uniform(0.1, 0.3), rng.uniform(-9, -4), rng.uniform(0.9, 1.3)
        loss = np.sort(rng.uniform(0.5, 1.8, rng.integers(8, 41)))
        acc = a / (1 + np.exp(-k * (loss - l0))) + b + 0.01 * rng.normal(size=loss.size)
        parts.append(pd.DataFrame({"task": f"task{t:04d}", "bpb": loss, "acc": np.clip(acc, 1e-3, None)}))
    return pd.concat(parts, ignore_index=True)


def sigmoid(x, a, b, k, l0):
    return a / (1 + np.exp(-k * (x - l0))) + b


def sigmoid_jac(p, x, y):
    a, _, k, l0 = p
    s = 1 / (1 + np.exp(-k * (x - l0)))
    ds = s * (1 - s)
    return np.stack([s, np.ones_like(x), a * ds * (x - l0), -a * ds * k], axis=1)


def scipy_loop(frame, starts, tasks, analytic: bool) -> dict[str, float]:
    best = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", OptimizeWarning)
        for task in tasks:
            g = frame[frame["task"] == task]
            x, y = g["bpb"].to_numpy(), g["acc"].to_numpy()
            f_best = np.inf
            for p0 in starts:
                try:
                    if analytic:
                        res = least_squares(
                            lambda p, x=x, y=y: sigmoid(x, *p) - y,
                            p0,
                            jac=lambda p, x=x, y=y: sigmoid_jac(p, x, y),
                            method="lm",
                        )
                        p = res.x
                    else:
                        p, _ = curve_fit(sigmoid, x, y, p0=p0, maxfev=2000)
                except RuntimeError:
                    continue
                f = 0.5 * np.sum((sigmoid(x, *p) - y) ** 2)
                if np.isfinite(f) and f < f_best and p[0] < 0 and 0 < p[1] < 1 and p[2] > 0 and p[3] > 0:
                    f_best = f
            best[task] = f_best
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--scipy-tasks", type=int, default=60, help="tasks timed for each SciPy loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out-md", default=None)
    args = parser.parse_args(argv)

    frame = make_tasks(args.tasks)
    law = sj.laws.get("sigmoid_floor")
    with jax.enable_x64(True):
        starts = np.stack([np.asarray(v) for v in law.unpack(law.start_grid()).values()], axis=1)
    kw = {"x": {"L": "bpb"}, "y": "acc", "by": "task", "loss": "squared"}

    t0 = time.perf_counter()
    table = sj.fit_many(law, frame, **kw)
    first = time.perf_counter() - t0
    warm = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        table = sj.fit_many(law, frame, **kw)
        warm.append(time.perf_counter() - t0)
    warm_s = min(warm)

    tasks = list(table.index[: args.scipy_tasks])
    rows = []
    for label, analytic in (
        ("SciPy curve_fit (finite-difference Jacobian) per task and start", False),
        ("SciPy least_squares(method='lm'), analytic Jacobian, per task and start", True),
    ):
        t0 = time.perf_counter()
        best = scipy_loop(frame, starts, tasks, analytic)
        elapsed = (time.perf_counter() - t0) * args.tasks / len(tasks)
        ours = table.loc[tasks, "objective"].to_numpy()
        theirs = np.array([best[t] for t in tasks])
        agree = np.sum(np.abs(ours - theirs) <= 1e-6 * np.abs(theirs) + 1e-15)
        lower = np.sum(ours < theirs * (1 - 1e-6))
        rows.append((label, elapsed, f"{agree}/{len(tasks)} equal, scalejax lower on {lower}"))

    n_conv = int((table["status"] == "converged").sum())
    load = os.getloadavg()[0]
    lines = [
        f"`python benchmarks/batch_tasks.py --tasks {args.tasks} --scipy-tasks {args.scipy_tasks}`: "
        f"{args.tasks} tasks of 8-40 points ({len(frame)} rows), {len(starts)} starts each; "
        f"load average {load:.1f}; {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"jax {jax.__version__}, scipy {scipy.__version__}",
        "",
        "| method | s total | ms per task | ratio to scalejax warm | agreement of best objective |",
        "|---|---:|---:|---:|---|",
        f"| scalejax fit_many (LM), warm, best of {args.repeats} | {warm_s:.2f} | {1e3 * warm_s / args.tasks:.2f} | 1.0x | "
        f"{n_conv}/{args.tasks} tasks converged |",
        f"| scalejax fit_many, first call (with compilation) | {first:.2f} | {1e3 * first / args.tasks:.2f} | "
        f"{first / warm_s:.1f}x | |",
    ]
    for label, elapsed, agree in rows:
        lines.append(
            f"| {label} ({len(tasks)} tasks timed, extrapolated) | {elapsed:.1f} | {1e3 * elapsed / args.tasks:.1f} | "
            f"{elapsed / warm_s:.0f}x | {agree} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out_md:
        with open(args.out_md, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
