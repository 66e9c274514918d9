"""IsoFLOP analysis (Chinchilla Approach 2) of every study in ../shared/data/isoflops, with bootstrap intervals.

    python benchmarks/isoflop_studies.py [--n-boot 2000]

Uses the runs not flagged as outliers by the data set's own quality control,
and prints, per study, the exponent a of N* = G C^a (and b = 1 - a of D*) with
95% intervals from resampling runs within each budget, and the optimal size
predicted at 1e24 FLOPs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

import scalejax as sj

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "isoflops" / "isoflops.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=2000)
    args = parser.parse_args()
    runs = pd.read_csv(DATA)
    runs = runs[~runs.outlier]
    print(
        "| experiment | budgets | runs | a (N* ~ C^a) | 95% interval | b (D* ~ C^b) | N* at 1e24 FLOPs | 95% interval | s |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---|---:|")
    for name, frame in runs.groupby("experiment", sort=True):
        start = time.perf_counter()
        try:
            iso = sj.analysis.isoflop(frame, N="params", loss="loss", compute="budget", n_boot=args.n_boot)
        except sj.ScalejaxError as err:
            print(f"| {name} | - | {len(frame)} | failed: {err} |")
            continue
        seconds = time.perf_counter() - start
        n = iso.power_law.loc["N"]
        d = iso.power_law.loc["D"]
        at = iso.predict(1e24).iloc[0]
        print(
            f"| {name} | {len(iso.budgets)} | {len(frame)} | {n.exponent:.3f} | [{n.exponent_lo:.3f}, {n.exponent_hi:.3f}] "
            f"| {d.exponent:.3f} | {at.N:.3g} | [{at.N_lo:.3g}, {at.N_hi:.3g}] | {seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
