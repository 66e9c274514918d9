"""M4 (Alabdulmohsin et al. 2022): the law's Newton solve against SciPy's root finder, the estimator against a
per-curve NumPy implementation of the same estimator (benchmarks/m4_reference.py)."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

import scalejax as sj

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from m4_reference import ReferenceM4

LAW = sj.laws.get("m4")


def brent_eps(p, x):
    """eps solving (eps - eps_inf) / (eps_0 - eps)^alpha = beta x^-c between the plateaus, by SciPy."""
    f, gap = p["beta"] * x ** -p["c"], p["delta0"]
    # Solved for the excess w = eps - eps_inf in [0, delta0], to full relative precision even when w is tiny.
    w = brentq(lambda w: w - f * (gap - w) ** p["alpha"], 0.0, gap, xtol=1e-300, rtol=1e-15)
    return p["eps_inf"] + w


CASES = [
    {"eps_inf": 0.05, "delta0": 0.8, "beta": 300.0, "c": 0.4, "alpha": 0.7},
    {"eps_inf": 0.3, "delta0": 0.7, "beta": 3e6, "c": 0.9, "alpha": 2.5},  # k spans many decades
    {"eps_inf": 1e-3, "delta0": 5.0, "beta": 0.5, "c": 0.1, "alpha": 0.02},  # alpha near 0
    {"eps_inf": 0.2, "delta0": 0.6, "beta": 1e-3, "c": 0.05, "alpha": 8.0},  # eps near eps_inf
]


@pytest.mark.parametrize("p", CASES)
def test_newton_solve_matches_brent(p):
    x = np.geomspace(1.0, 1e12, 25)
    with jax.enable_x64(True):
        ours = np.asarray(LAW.predict(p, {"x": jnp.asarray(x)}))
    want = np.array([brent_eps(p, xi) for xi in x])
    np.testing.assert_allclose(ours, want, rtol=1e-12)


def test_derivatives_are_the_implicit_functions():
    p = CASES[0]
    with jax.enable_x64(True):
        x = {"x": jnp.asarray(np.geomspace(1e2, 1e8, 7))}
        for name in p:
            g = jax.jacfwd(lambda v, name=name: LAW.log_predict({**p, name: v}, x))(p[name])
            h = 1e-6 * p[name]
            fd = (
                np.log([brent_eps({**p, name: p[name] + h}, xi) for xi in np.asarray(x["x"])])
                - np.log([brent_eps({**p, name: p[name] - h}, xi) for xi in np.asarray(x["x"])])
            ) / (2 * h)
            np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-5, atol=1e-9, err_msg=name)


def test_alpha_zero_is_a_power_law_above_the_floor():
    p = {"eps_inf": 0.1, "delta0": 0.5, "beta": 2.0, "c": 0.3, "alpha": 0.0}
    x = np.geomspace(1.0, 1e6, 5)
    with jax.enable_x64(True):
        np.testing.assert_allclose(LAW.predict(p, {"x": jnp.asarray(x)}), 0.1 + 2.0 * x**-0.3, rtol=1e-14)


def curves(seed=0):
    """Two noisy M4 curves: an error rate (capped at 1) and a loss (no cap)."""
    rng = np.random.default_rng(seed)
    parts = []
    for name, p, n in (
        ("error", {"eps_inf": 0.25, "delta0": 0.7, "beta": 60.0, "c": 0.5, "alpha": 0.6}, 14),
        ("loss", {"eps_inf": 0.3, "delta0": 0.65, "beta": 30.0, "c": 0.35, "alpha": 0.3}, 11),
    ):
        x = np.geomspace(1e3, 1e7, n)
        y = np.array([brent_eps(p, xi) for xi in x]) * np.exp(0.003 * rng.standard_normal(n))
        parts.append(pd.DataFrame({"curve": name, "x": x, "y": y, "upper": 1.0 if name == "error" else np.nan}))
    return pd.concat(parts, ignore_index=True)


def test_estimator_matches_the_per_curve_numpy_estimator():
    frame = curves()
    table = sj.laws.m4_fit(frame, x="x", y="y", by="curve", upper="upper", max_alternations=160)
    for name, group in frame.groupby("curve"):
        upper = 1.0 if name == "error" else None
        ref = ReferenceM4(upper, 1.0, max_alternations=160, frozen_design=True).fit(group["x"], group["y"])
        row = table.loc[name]
        got = [row["eps_inf"], row["eps_0"], row["beta"], -row["c"], row["alpha"]]
        np.testing.assert_allclose(got, [ref.eps_inf, ref.eps_0, ref.beta, ref.c, ref.alpha], rtol=1e-7, err_msg=name)
        # Its predictions solve the same equation the reference's grid search approximates.
        x_new = np.geomspace(1e7, 1e9, 5)
        with jax.enable_x64(True):
            ours = np.asarray(LAW.predict(row[list(LAW.param_names)].to_dict(), {"x": jnp.asarray(x_new)}))
        np.testing.assert_allclose(ours, ref.predict(x_new), atol=2 * (ref.eps_0 - ref.eps_inf) / 10_000)


def test_estimates_respect_the_data_dependent_bounds():
    frame = curves(1)
    table = sj.laws.m4_fit(frame, x="x", y="y", by="curve", upper="upper", max_alternations=300)
    for name, group in frame.groupby("curve"):
        row = table.loc[name]
        assert 0 <= row["eps_inf"] <= group["y"].min() - 1e-3
        assert row["eps_0"] >= group["y"].max() + 1e-3
        assert row["beta"] >= 1 and row["c"] >= 0 and row["alpha"] >= 0
    assert table.loc["error", "eps_0"] <= 1.0 + 1e-3
    assert (table["n_points"] == [14, 11]).all()


def test_bad_input_is_one_clear_error():
    frame = curves()
    with pytest.raises(sj.DataError, match="losses above upper"):
        sj.laws.m4_fit(frame, x="x", y="y", by="curve", upper=0.5)
    with pytest.raises(sj.DataError, match="fewer than 3 points"):
        sj.laws.m4_fit(frame.head(2), x="x", y="y")
    with pytest.raises(sj.DataError, match="column 'z'"):
        sj.laws.m4_fit(frame, x="z", y="y")
    with pytest.raises(sj.ScalejaxError, match="least_squares_eps_0"):
        sj.laws.m4_fit(frame, x="x", y="y", by="curve", least_squares_eps_0="latest")
