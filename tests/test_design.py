"""Experiment design: the linearised variance against refits, and recommendations against random runs of equal cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scalejax as sj
from scalejax._data import Data

X = {"N": "N", "D": "D"}
SMALL_STARTS = np.array(
    [[e, a, b, al, 0.3] for e in (1.0, 2.0) for a in (1e2, 1e3) for b in (1e2, 1e3) for al in (0.3, 0.5)]
)
TRUTH = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
POINT = {"N": 70e9, "D": 1.4e12}
SIGMA = 0.02


def truth_loss(n, d):
    return TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]


def initial_runs():
    n, d = np.meshgrid(np.geomspace(2e7, 1e9, 6), np.geomspace(4e8, 3e10, 5), indexing="ij")
    return n.ravel(), d.ravel()


def candidate_runs():
    """From inside the fitted range (cheap, little news) to beyond it (costly, informative): 36 runs."""
    n, d = np.meshgrid(np.geomspace(2e7, 5e9, 6), np.geomspace(4e8, 2e11, 6), indexing="ij")
    return pd.DataFrame({"N": n.ravel(), "D": d.ravel()})


def data_with(n, d, y, chosen):
    """The initial runs plus every candidate, candidates weighted 1 when chosen and 0 otherwise (one shape for all fits)."""
    w = np.concatenate([np.ones(len(n) - chosen.size), chosen.astype(float)])
    return Data.from_arrays({"N": n, "D": d}, y, weights=w)


def interval_width(data, seed):
    boot = sj.bootstrap("chinchilla", data, n=200, seed=seed, starts=SMALL_STARTS, loss="squared_log", max_steps=2000)
    pred = boot.predict_draws(POINT)[:, 0]
    lo, hi = np.quantile(pred, [0.025, 0.975])
    return np.log(hi / lo), boot


@pytest.mark.slow
def test_recommended_runs_shrink_the_interval_more_than_random_runs_of_equal_cost():
    cands = candidate_runs()
    cost = 6 * cands.N * cands.D
    # A budget that buys about half the candidates (they cost 1.3e22 in all), so the choice matters.
    budget = 2e20
    n0, d0 = initial_runs()
    n_all = np.concatenate([n0, cands.N])
    d_all = np.concatenate([d0, cands.D])
    ratios = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        y_all = truth_loss(n_all, d_all) * np.exp(SIGMA * rng.standard_normal(n_all.size))
        width0, boot = interval_width(data_with(n_all, d_all, y_all, np.zeros(len(cands), bool)), seed)
        table = sj.analysis.design(boot, cands, POINT, budget=budget)
        chosen = np.zeros(len(cands), bool)
        chosen[table.index[table.pick > 0]] = True
        spent = cost[chosen].sum()
        assert spent <= budget and table.attrs["spent"] == pytest.approx(spent)
        width_design, _ = interval_width(data_with(n_all, d_all, y_all, chosen), seed)
        random_widths = []
        for _ in range(2):
            # Random runs, in random order, while they fit in what the recommendation spent.
            pick = np.zeros(len(cands), bool)
            left = spent
            for i in rng.permutation(len(cands)):
                if cost[i] <= left:
                    pick[i] = True
                    left -= cost[i]
            random_widths.append(interval_width(data_with(n_all, d_all, y_all, pick), seed)[0])
        assert width_design < width0
        ratios.append(width_design / np.mean(random_widths))
    # Measured: 0.71, 0.90, 0.63 for seeds 0-2 (bootstrap widths of refits on simulated outcomes; at a
    # budget of 1e21, which buys most candidates, random runs do about as well: 1.02, 1.00, 0.80).
    assert np.mean(ratios) < 0.85, ratios


def log_law_jacobian(p, n, d):
    """Gradient of log L(N, D) in the natural parameters (E, A, B, alpha, beta), written out by hand: (m, 5)."""
    tn, td = p["A"] * n ** -p["alpha"], p["B"] * d ** -p["beta"]
    loss = p["E"] + tn + td
    return np.stack(
        [1 / loss, tn / p["A"] / loss, td / p["B"] / loss, -tn * np.log(n) / loss, -td * np.log(d) / loss], axis=1
    )


def test_linearised_widths_match_a_direct_natural_parameter_computation():
    """The Sherman-Morrison updates in unconstrained space against direct inverses in natural parameters."""
    n0, d0 = initial_runs()
    rng = np.random.default_rng(5)
    y0 = truth_loss(n0, d0) * np.exp(SIGMA * rng.standard_normal(n0.size))
    fit = sj.fit("chinchilla", {"N": n0, "D": d0, "loss": y0}, x=X, y="loss", starts=SMALL_STARTS, loss="squared_log")
    cands = candidate_runs()
    table = sj.analysis.design(fit, cands, POINT, noise=SIGMA).sort_index()
    p = fit.params
    z = 1.959963984540054
    info = log_law_jacobian(p, n0, d0).T @ log_law_jacobian(p, n0, d0) / SIGMA**2
    g = log_law_jacobian(p, np.array([POINT["N"]]), np.array([POINT["D"]]))[0] * truth_value(p)
    assert table.attrs["width_now"] == pytest.approx(2 * z * np.sqrt(g @ np.linalg.solve(info, g)), rel=1e-6)
    j_new = log_law_jacobian(p, cands.N.to_numpy(), cands.D.to_numpy())
    for i in range(len(cands)):
        after = info + np.outer(j_new[i], j_new[i]) / SIGMA**2
        assert table.width_after[i] == pytest.approx(2 * z * np.sqrt(g @ np.linalg.solve(after, g)), rel=1e-6)
    expected = (table.attrs["width_now"] - table.width_after) / (6 * cands.N * cands.D)
    np.testing.assert_allclose(table.reduction_per_flop, expected, rtol=1e-9)


def truth_value(p):
    """The target (predicted loss at POINT) at parameters p: the gradient of L is L times that of log L."""
    return p["E"] + p["A"] / POINT["N"] ** p["alpha"] + p["B"] / POINT["D"] ** p["beta"]


def test_greedy_respects_budget_and_k():
    n0, d0 = initial_runs()
    y0 = truth_loss(n0, d0)
    fit = sj.fit(
        "chinchilla",
        {"N": n0, "D": d0, "loss": y0 * np.exp(0.01 * np.sin(np.arange(n0.size)))},
        x=X,
        y="loss",
        starts=SMALL_STARTS,
        loss="squared_log",
    )
    cands = candidate_runs()
    table = sj.analysis.design(fit, cands, lambda p: sj.analysis.chinchilla_compute_optimal(p, 1e24)["N"], k=3)
    assert sorted(table.pick[table.pick > 0]) == [1, 2, 3]
    assert list(table.pick.iloc[:3]) == [1, 2, 3]
    widths = table.width_after_picks.iloc[:3].to_numpy()
    assert np.all(np.diff(widths) < 0) and widths[0] < table.attrs["width_now"]
    capped = sj.analysis.design(fit, cands, POINT, budget=1e20)
    assert capped.attrs["spent"] <= 1e20
    assert (6 * capped.N * capped.D)[capped.pick > 0].sum() <= 1e20
    with pytest.raises(sj.ScalejaxError, match="cost"):
        sj.analysis.design(fit, cands.assign(cost=-1.0), POINT)
