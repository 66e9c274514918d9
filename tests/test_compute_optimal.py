"""Compute-optimal allocation: closed form against the numerical optimiser, SciPy references, intervals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from scipy.stats import norm

import scalejax as sj
from scalejax._draws import Draws
from scalejax.analysis import chinchilla_compute_optimal, optimal_split

X = {"N": "N", "D": "D"}
SMALL_STARTS = np.array(
    [[e, a, b, al, 0.3] for e in (1.0, 2.0) for a in (1e2, 1e3) for b in (1e2, 1e3) for al in (0.3, 0.5)]
)
TRUTH = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
BUDGETS = np.array([1e19, 1e21, 5.76e23, 1e26])


@pytest.fixture(scope="module")
def example():
    return sj.datasets.load_example("chinchilla")


@pytest.fixture(scope="module")
def boot(example):
    return sj.bootstrap("chinchilla", example, x=X, y="loss", n=48, seed=7, starts=SMALL_STARTS)


@pytest.fixture(scope="module")
def fit(boot):
    return boot.fit


def test_closed_form_and_numerical_agree_on_every_bootstrap_draw(boot):
    law = boot.law
    closed = boot.map(lambda p: chinchilla_compute_optimal(p, jnp.asarray(BUDGETS)))
    numerical = boot.map(lambda p: optimal_split(law, p, jnp.asarray(BUDGETS)))
    assert closed["N"].shape == (boot.n_draws, BUDGETS.size)
    np.testing.assert_allclose(numerical["N"], closed["N"], rtol=1e-6)
    np.testing.assert_allclose(numerical["D"], closed["D"], rtol=1e-6)
    # The table: the full-data fit's optimum and percentiles of the draws' optima.
    a = sj.compute_optimal(boot, BUDGETS, method="numerical")
    np.testing.assert_allclose(a.N_lo, np.quantile(closed["N"], 0.025, axis=0), rtol=1e-6)
    np.testing.assert_allclose(a.D_hi, np.quantile(closed["D"], 0.975, axis=0), rtol=1e-6)
    central = Draws(boot.law, boot.fit.u).map(lambda p: chinchilla_compute_optimal(p, jnp.asarray(BUDGETS)))
    np.testing.assert_allclose(a.N, central["N"][0], rtol=1e-6)
    assert list(a["compute"]) == list(BUDGETS)
    assert np.all((a.N_lo < a.N) & (a.N < a.N_hi))
    np.testing.assert_allclose(a.D * a.N * 6, BUDGETS, rtol=1e-10)


def test_numerical_optimum_of_kaplan_law_matches_scipy():
    law = sj.laws.get("kaplan")
    p = {"Nc": 6.4e13, "Dc": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}
    with jax.enable_x64(True):
        out = jax.jit(lambda q: optimal_split(law, q, np.array([1e20, 1e23])))(p)
    for i, c in enumerate([1e20, 1e23]):

        def loss(s, c=c):
            n = np.exp(s)
            d = c / (6 * n)
            return ((p["Nc"] / n) ** (p["alpha_N"] / p["alpha_D"]) + p["Dc"] / d) ** p["alpha_D"]

        ref = scipy.optimize.minimize_scalar(
            loss, bounds=(0, np.log(c / 6)), method="bounded", options={"xatol": 1e-10}
        )
        assert float(np.log(out["N"][i])) == pytest.approx(ref.x, abs=1e-5)


def test_optimum_is_differentiable_and_matches_the_closed_form_gradient():
    law = sj.laws.get("chinchilla")
    names = list(TRUTH)
    theta = np.array([TRUTH[k] for k in names])
    with jax.enable_x64(True):

        def numerical(t):
            return jnp.log(optimal_split(law, dict(zip(names, t, strict=True)), 1e23)["N"])

        def closed(t):
            return jnp.log(chinchilla_compute_optimal(dict(zip(names, t, strict=True)), 1e23)["N"])

        grads = jax.jit(lambda t: (jax.grad(numerical)(t), jax.grad(closed)(t)))(jnp.asarray(theta))
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6, atol=1e-9)


def test_fit_gets_delta_method_intervals(fit):
    """For a single fit the interval is the delta method; here against finite differences and Fit.covariance."""
    table = sj.compute_optimal(fit, 5.76e23, level=0.9)
    names = list(fit.law.param_names)
    theta = np.array([fit.params[k] for k in names])

    def log_n(t):
        p = dict(zip(names, t, strict=True))
        g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
        return np.log(g * (5.76e23 / 6) ** (p["beta"] / (p["alpha"] + p["beta"])))

    grad = np.array([(log_n(theta + h) - log_n(theta - h)) / (2 * h[i]) for i, h in enumerate(np.diag(theta * 1e-6))])
    sd = np.sqrt(grad @ fit.covariance().to_numpy() @ grad)
    z = norm.ppf(0.95)
    assert table.N.iloc[0] == pytest.approx(np.exp(log_n(theta)), rel=1e-9)
    assert np.log(table.N_hi.iloc[0] / table.N.iloc[0]) == pytest.approx(z * sd, rel=1e-4)
    assert np.log(table.N.iloc[0] / table.N_lo.iloc[0]) == pytest.approx(z * sd, rel=1e-4)


def test_tokens_for_loss_matches_closed_form_and_flags_unreachable_targets(fit):
    p = fit.params
    table = sj.analysis.tokens_for_loss(fit, loss=[2.1, 2.1, 1.5], N=[7e9, 7e10, 7e10])
    for i, (target, n) in enumerate([(2.1, 7e9), (2.1, 7e10)]):
        d = (p["B"] / (target - p["E"] - p["A"] / n ** p["alpha"])) ** (1 / p["beta"])
        assert table.D.iloc[i] == pytest.approx(d, rel=1e-9)
        assert table.compute.iloc[i] == pytest.approx(6 * n * d, rel=1e-9)
        assert table.D_lo.iloc[i] < d < table.D_hi.iloc[i]
    assert np.isnan(table.D.iloc[2])  # below E: no amount of data reaches it


def test_inference_optimal_matches_brute_force_and_reduces_to_chinchilla(fit):
    p = fit.params
    target = 2.05
    table = sj.analysis.inference_optimal(fit, loss=target, inference_tokens=[0.0, 2e12, 2e13])

    def tokens(n):
        gap = target - p["E"] - p["A"] / n ** p["alpha"]
        return (p["B"] / gap) ** (1 / p["beta"]) if gap > 0 else np.inf

    n_min = (p["A"] / (target - p["E"])) ** (1 / p["alpha"])
    for i, d_inf in enumerate([0.0, 2e12, 2e13]):
        ref = scipy.optimize.minimize_scalar(
            lambda s, d_inf=d_inf: np.log(6 * np.exp(s) * tokens(np.exp(s)) + 2 * np.exp(s) * d_inf),
            bounds=(np.log(n_min) + 1e-6, np.log(n_min) + 15),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert np.log(table.N.iloc[i]) == pytest.approx(ref.x, abs=1e-4)
    # Without inference the cheapest model for a loss is the compute-optimal one for its budget.
    co = sj.compute_optimal(fit, table.total_flops.iloc[0])
    assert co.N.iloc[0] == pytest.approx(table.N.iloc[0], rel=1e-6)
    assert co.loss.iloc[0] == pytest.approx(target, rel=1e-9)
    # More inference: smaller models trained longer.
    assert np.all(np.diff(table.N) < 0) and np.all(np.diff(table.tokens_per_param) > 0)


def test_bad_arguments_fail_clearly(fit):
    with pytest.raises(sj.ScalejaxError, match="compute"):
        sj.compute_optimal(fit, [1e21, -1.0])
    with pytest.raises(sj.LawError, match="N"):
        sj.compute_optimal(sj.Draws(sj.laws.get("power"), np.zeros((2, 3))), 1e21)
    with pytest.raises(sj.ScalejaxError, match="method"):
        sj.compute_optimal(fit, 1e21, method="newton")
