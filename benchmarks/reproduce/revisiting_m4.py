"""Reproduce the M4 estimator of Alabdulmohsin et al. (2022) on their learning-curve benchmark with built-in pieces.

Protocol (the paper's released evaluation):
- Data: the benchmark's 92 curves (../shared/data/revisiting; the language
  file repeats rows and is deduplicated), image classification (IC),
  BIG-Bench (BB), neural machine translation (NMT) and language modelling (LM).
- Fit each curve on its `Training == 1` points with M4's estimator
  (`sj.laws.m4_fit`): the defining equation in log-excess space, eps_inf in
  [0, min(y) - 1e-3], eps_0 at least max(y) + 1e-3 and, for error rates (IC,
  BB), at most 1.001; eps_0 started at 1 (1.001 for BB).
- Predict the `Training == 0` points by the `m4` law and score each curve by
  the RMSE of log loss; report the mean over curves, overall and per domain.

Published: the authors' released estimator on this benchmark, as measured in
issue 15 of this project (mean log RMSE 0.0350 over the 92 curves, NMT 0.0181).
With `--reference`, the per-curve NumPy estimator of benchmarks/m4_reference.py
(the same estimator, written from the paper's description) also runs here.

Usage:
    python benchmarks/reproduce/revisiting_m4.py [--reference]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from revisiting import curves, reference_m4, scalejax_m4

PUBLISHED = {"all": 0.0350, "NMT": 0.0181}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference", action="store_true", help="also run the per-curve NumPy estimator (an hour or more)"
    )
    args = parser.parse_args(argv)
    frame = curves()
    fit_rows, holdout = frame[frame["Training"] == 1], frame[frame["Training"] == 0]
    table, rmse, seconds = scalejax_m4(fit_rows, holdout)
    domain = rmse.index.str.split(" | ").str[0]
    ref = None
    if args.reference:
        start = time.perf_counter()
        _, ref, _ = reference_m4(fit_rows, holdout, list(rmse.index))
        ref_seconds = time.perf_counter() - start
    print(f"M4 on the revisiting benchmark, sj.laws.m4_fit; {seconds:.1f} s; load average {os.getloadavg()[0]:.1f}\n")
    header = "| domain | curves | scalejax mean log RMSE | published (released estimator) |"
    header += " NumPy reference |" if ref is not None else ""
    print(header + "\n|---|---:|---:|---:|" + ("---:|" if ref is not None else ""))
    for name, group in [("all", rmse), *((d, rmse[domain == d]) for d in sorted(set(domain)))]:
        pub = f"{PUBLISHED[name]:.4f}" if name in PUBLISHED else ""
        extra = f" {ref.loc[group.index].mean():.4f} |" if ref is not None else ""
        print(f"| {name} | {len(group)} | {group.mean():.4f} | {pub} |{extra}")
    print(
        f"\nconverged: {int((table['status'] == 'converged').sum())}/{len(table)} curves (the rest stop at 10,000 alternations)"
    )
    if ref is not None:
        print(f"NumPy reference: {ref_seconds:.1f} s ({ref_seconds / seconds:.1f}x the scalejax time)")


if __name__ == "__main__":
    main()
