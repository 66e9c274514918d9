"""Influence of runs on a forecast: implicit-function derivatives against finite differences of SciPy refits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.optimize

import scalejax as sj

X = {"N": "N", "D": "D"}
SMALL_STARTS = np.array(
    [[e, a, b, al, 0.3] for e in (1.0, 2.0) for a in (1e2, 1e3) for b in (1e2, 1e3) for al in (0.3, 0.5)]
)
POINT = {"N": 70e9, "D": 1.4e12}


def scipy_refit(frame, weights, u0):
    """Weighted least squares on log loss with SciPy, in (log E, log A, log B, alpha, beta)."""
    log_n, log_d, log_y = (np.log(frame[c].to_numpy()) for c in ("N", "D", "loss"))

    def resid(u):
        pred = np.logaddexp(np.logaddexp(u[0], u[1] - u[3] * log_n), u[2] - u[4] * log_d)
        return np.sqrt(weights) * (pred - log_y)

    out = scipy.optimize.least_squares(resid, u0, xtol=1e-15, ftol=1e-15, gtol=1e-15, method="lm")
    e, a, b, alpha, beta = out.x
    return np.exp(e) + np.exp(a) / POINT["N"] ** alpha + np.exp(b) / POINT["D"] ** beta


@pytest.fixture(scope="module")
def example():
    return sj.datasets.load_example("chinchilla")


def test_influence_matches_finite_differences_of_refits(example):
    fit = sj.fit("chinchilla", example, x=X, y="loss", loss="squared_log", starts=SMALL_STARTS)
    table = sj.analysis.influence(fit, POINT)
    p = fit.params
    assert table.attrs["target"] == pytest.approx(
        p["E"] + p["A"] / POINT["N"] ** p["alpha"] + p["B"] / POINT["D"] ** p["beta"], rel=1e-12
    )
    u0 = np.array([np.log(p["E"]), np.log(p["A"]), np.log(p["B"]), p["alpha"], p["beta"]])
    # Large enough that the refits' own tolerance (about 1e-8 of the forecast) does not show, small
    # enough to stay linear: at 3e-2 the central difference agrees with smaller steps' to 2e-4.
    eps = 3e-2
    # The three most influential runs and three from the middle of the ranking.
    for label in [*table.index[:3], *table.index[40:43]]:
        i = example.index.get_loc(label)
        w_plus, w_minus = np.ones(len(example)), np.ones(len(example))
        w_plus[i] += eps
        w_minus[i] -= eps
        fd = (scipy_refit(example, w_plus, u0) - scipy_refit(example, w_minus, u0)) / (2 * eps)
        assert table.loc[label, "d_target_d_weight"] == pytest.approx(fd, rel=2e-3, abs=1e-9), label
    # Ranked by size, and the largest runs drive a far extrapolation.
    assert np.all(np.diff(np.abs(table.d_target_d_weight.to_numpy())) <= 0)
    assert table.N.iloc[:5].median() > example.N.median()


def test_influence_of_a_derived_target_on_a_huber_bootstrap(example):
    boot = sj.bootstrap("chinchilla", example, x=X, y="loss", n=8, seed=0, starts=SMALL_STARTS)
    table = sj.analysis.influence(boot, lambda p: sj.analysis.chinchilla_compute_optimal(p, 1e24)["N"])
    assert len(table) == len(example)
    assert np.isfinite(table.d_target_d_weight).all()
    p = boot.fit.params
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    assert table.attrs["target"] == pytest.approx(g * (1e24 / 6) ** (p["beta"] / (p["alpha"] + p["beta"])), rel=1e-9)
    # Runs outside the Huber band still pull (rho' = +-delta), runs of either sign exist.
    assert (table.d_target_d_weight > 0).any() and (table.d_target_d_weight < 0).any()
    with pytest.raises(sj.ScalejaxError, match="one point"):
        sj.analysis.influence(boot, {"N": [1e9, 2e9], "D": [1e10, 1e10]})


def test_influence_of_an_unweighted_run_is_what_adding_it_would_do(example):
    """For a run of weight 0 the derivative is one-sided: the refits add it with weights eps and 2 eps."""
    label = example.index[example.N.argmax()]
    weights = np.ones(len(example))
    weights[example.index.get_loc(label)] = 0.0
    fit = sj.fit(
        "chinchilla", example.assign(w=weights), x=X, y="loss", weights="w", loss="squared_log", starts=SMALL_STARTS
    )
    table = sj.analysis.influence(fit, POINT)
    assert table.loc[label, "weight"] == 0 and table.loc[label, "drop_effect"] == 0
    p = fit.params
    u0 = np.array([np.log(p["E"]), np.log(p["A"]), np.log(p["B"]), p["alpha"], p["beta"]])
    eps = 1e-2
    at = [scipy_refit(example, np.where(weights == 0, k * eps, weights), u0) for k in (0, 1, 2)]
    one_sided = (4 * at[1] - at[2] - 3 * at[0]) / (2 * eps)  # second order, from one side
    assert table.loc[label, "d_target_d_weight"] == pytest.approx(one_sided, rel=2e-3)
    assert abs(table.loc[label, "d_target_d_weight"]) > 0


def test_influence_is_undefined_where_the_optimum_is_not_unique(chinchilla_design):
    """All runs at one model size: E, A and alpha trade off exactly, so no derivative exists."""
    frame = pd.DataFrame({k: v[:6] for k, v in chinchilla_design.items()})
    truth = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
    noise = np.array([0.01, -0.02, 0.015, -0.005, 0.0, 0.01])
    frame["loss"] = (
        truth["E"] + truth["A"] / frame.N ** truth["alpha"] + truth["B"] / frame.D ** truth["beta"]
    ) * np.exp(noise)
    with pytest.warns(sj.FitWarning):
        fit = sj.fit("chinchilla", frame, x=X, y="loss", loss="squared_log", starts=SMALL_STARTS)
    with pytest.raises(sj.FitError, match="not positive definite"):
        sj.analysis.influence(fit, POINT)
