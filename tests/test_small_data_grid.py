"""Regression: the 4,500-start Chinchilla grid on a 16-run ladder finishes (it once stalled in 2,048-lane calls)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

RUN = textwrap.dedent(
    """
    import numpy as np, pandas as pd, scalejax as sj
    rng = np.random.default_rng(0)
    N = np.repeat([1.9e8, 3.7e8, 7.6e8, 1.2e9], 4)
    D = N * np.tile([10.0, 20.0, 50.0, 100.0], 4)
    y = (1.8 + 480 / N**0.35 + 2000 / D**0.37) * np.exp(rng.normal(0, 0.01, size=N.size))
    fit = sj.fit("chinchilla", pd.DataFrame({"N": N, "D": D, "loss": y}), x={"N": "N", "D": "D"}, y="loss", strategy="all")
    print(fit.n_starts, fit.n_converged)
    """
)


def test_full_grid_on_sixteen_runs_finishes():
    # In a subprocess with a time limit, so a stall fails the test instead of hanging CI.
    done = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    n_starts, n_converged = map(int, done.stdout.split())
    assert n_starts == 4500 and n_converged > 4400
