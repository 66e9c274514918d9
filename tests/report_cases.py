"""Data and estimates the report tests share (tests/test_report.py, tests/test_report_browser.py).

Each estimate is made once per test session (`functools.cache`): a joint-law bootstrap and a groups bootstrap
are drawn, reported and rendered by both files, and making them is most of a report test's time.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd

import scalejax as sj

# The small start grid of tests/conftest.py's `chinchilla_starts`: 72 natural-valued starts.
STARTS = np.array(
    list(itertools.product((1.0, 3.0), (100.0, 5000.0), (100.0, 5000.0), (0.2, 0.4, 0.6), (0.2, 0.4, 0.6)))
)
# The Chinchilla form with a small floor E, so that some resamples drive E to its bound 0.
TRUTH = {"E": 0.05, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def sweep_frame(seed: int = 0) -> pd.DataFrame:
    """A sweep of 4 model sizes x 5 token counts (not isoFLOP) from `TRUTH` with 2% noise: columns params, tokens, loss."""
    rng = np.random.default_rng(seed)
    n = np.repeat([2e7, 6e7, 2e8, 6e8], 5)
    d = n * np.tile([5.0, 10.0, 20.0, 40.0, 80.0], 4)
    p = TRUTH
    loss = (p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]) * np.exp(rng.normal(0, 0.02, n.size))
    return pd.DataFrame({"params": n, "tokens": d, "loss": loss})


def compute_law() -> sj.Law:
    """`L(C) = E + A C^-alpha`, the custom law of notebook 04."""

    @sj.law(
        params=[
            sj.Param("E", lower=0, grid=(0.5, 2.0)),
            sj.Param("A", lower=0, grid=(10.0, 1e3)),
            sj.Param("alpha", lower=0, upper=2, grid=(0.1, 0.3)),
        ],
        inputs=["C"],
        equation="L(C) = E + A C^-alpha",
    )
    def compute_law(p, x):
        return p["E"] + p["A"] * jnp.exp(-p["alpha"] * jnp.log(x["C"]))

    return compute_law


@functools.cache
def joint_case() -> tuple[sj.Law, pd.DataFrame, sj.Bootstrap]:
    """Three data sets sharing one exponent (notebook 04's design, 12 runs each): the joint law, the runs and a
    20-resample bootstrap of the joint law."""
    rng = np.random.default_rng(0)
    rows = []
    for name, (e, a) in {"web": (1.8, 60.0), "code": (0.9, 40.0), "books": (2.2, 90.0)}.items():
        c = np.geomspace(1e17, 1e21, 12)
        rows.append(pd.DataFrame({"set": name, "C": c, "loss": (e + a * c**-0.15) * np.exp(rng.normal(0, 0.01, 12))}))
    runs = pd.concat(rows, ignore_index=True)
    law = sj.joint(compute_law(), groups=["web", "code", "books"], shared=["alpha"])
    return law, runs, sj.bootstrap(law, runs, x={"C": "C", "group": "set"}, y="loss", n=20, seed=0)


@functools.cache
def groups_bootstrap() -> sj.Bootstrap:
    """A `scheme="groups"` bootstrap of the embedded example, runs grouped three by three (20 resamples)."""
    frame = sj.datasets.load_example("chinchilla")
    frame["run"] = (np.arange(len(frame)) // 3).astype(str)
    return sj.bootstrap(
        "chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", group="run", scheme="groups", n=20, seed=0, starts=STARTS
    )


_REPORTS: dict = {}


def report_of(name: str, folder) -> Path:
    """The HTML report of the `joint` or `groups` case: written into `folder` by the first caller, reused after."""
    if name not in _REPORTS:
        draws = joint_case()[2] if name == "joint" else groups_bootstrap()
        _REPORTS[name] = sj.write_report(draws, out=Path(folder) / f"{name}.html")
    return _REPORTS[name]
