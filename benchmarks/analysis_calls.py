"""Warm cost of every analysis call on 4,000 Chinchilla bootstrap draws, and what each call compiles.

Protocol: the real Chinchilla data (Epoch AI's digitised runs, 240 after
dropping the 5 highest losses), the summed Huber fit (delta 1e-3) from
Hoffmann et al.'s grid, a 4,000-resample row bootstrap (seed 0). Each
analysis is called once to warm up, then timed as the best of `--repeats`
calls; the compilations of the timed calls are counted with
`jax.monitoring` (backend compile events). The reference for `interval()` is
a pandas quantile of the same samples (`boot.samples.quantile`), timed the
same way. `chain_predict` feeds the Chinchilla draws into a second law (a
power law of the loss, fitted by a 4,000-resample bootstrap to synthetic
accuracies).

Usage:
    python benchmarks/analysis_calls.py [--n 4000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

import scalejax as sj

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "chinchilla_epoch" / "svg_extracted_data.csv"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compiles = [0]


def _count(event, duration, **kwargs):
    if event == COMPILE_EVENT:
        _compiles[0] += 1


def timed(fn, repeats: int) -> tuple[float, int]:
    """Best-of-`repeats` seconds of `fn()` after one warm-up call, and the compilations over the timed calls."""
    fn()
    before = _compiles[0]
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best, _compiles[0] - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    jax.monitoring.register_event_duration_secs_listener(_count)

    frame = sj.datasets.read_epoch_chinchilla(DATA)
    boot = sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=args.n, seed=0)
    rng = np.random.default_rng(0)
    loss = np.linspace(2.0, 3.5, 40)
    acc_frame = pd.DataFrame({"L": loss, "acc": 0.2 + 3.0 * loss**-2.0 * np.exp(0.02 * rng.standard_normal(40))})
    step2 = sj.bootstrap("power", acc_frame, x={"x": "L"}, y="acc", n=args.n, seed=1)
    new = {"N": [7e9, 70e9], "D": [1.4e11, 1.4e12]}
    samples = boot.samples

    def ratio(p):
        return {"ratio": p["alpha"] / p["beta"]}

    calls = {
        "pandas quantile of the samples (reference)": lambda: samples.quantile([0.025, 0.975]),
        "boot.interval()": lambda: boot.interval(0.95),
        "boot.table()": lambda: boot.table(),
        "boot.map(fn)": lambda: boot.map(ratio),
        "boot.derived_interval(fn)": lambda: boot.derived_interval(ratio),
        "boot.predict(new)": lambda: boot.predict(new),
        "compute_optimal(boot, [1e21, 1e24])": lambda: sj.compute_optimal(boot, [1e21, 1e24]),
        "extrapolate(boot, new)": lambda: sj.analysis.extrapolate(boot, new),
        "tokens_for_loss(boot, 2.1, 7e9)": lambda: sj.analysis.tokens_for_loss(boot, loss=2.1, N=7e9),
        "chain_predict(boot, step2, new)": lambda: sj.analysis.chain_predict(boot, step2, new),
    }
    load = os.getloadavg()
    print(
        f"# analysis_calls.py: {args.n} draws, best of {args.repeats}; {os.cpu_count()} CPUs, load "
        f"{load[0]:.2f}; Python {platform.python_version()}, jax {jax.__version__}, scalejax {sj.__version__}"
    )
    print("| call | warm ms | compilations per call | ratio to the pandas quantile |")
    print("|---|---:|---:|---:|")
    reference = None
    for name, fn in calls.items():
        seconds, compiles = timed(fn, args.repeats)
        reference = reference or seconds
        print(f"| {name} | {1e3 * seconds:.2f} | {compiles / args.repeats:g} | {seconds / reference:.1f}x |")


if __name__ == "__main__":
    main()
