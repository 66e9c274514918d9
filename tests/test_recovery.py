"""Fits recover known truths, predict at new points, and report standard errors that match SciPy."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import curve_fit

import scalejax as sj
from scalejax._fit import make_starts

TRUTH = sj.datasets.CHINCHILLA_TRUTH
NAMES = ("E", "A", "B", "alpha", "beta")


def chinchilla_loss(p, n, d):
    return p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"]


def assert_recovers(fit, truth, rel):
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=rel), k


# --- Chinchilla, noise-free -------------------------------------------------

log_uniform = st.floats(np.log(100.0), np.log(5000.0)).map(np.exp)


@settings(max_examples=15, deadline=None)
@given(
    E=st.floats(1.0, 3.0),
    A=log_uniform,
    B=log_uniform,
    alpha=st.floats(0.2, 0.6),
    beta=st.floats(0.2, 0.6),
    loss=st.sampled_from(["squared_log", "huber"]),
)
def test_chinchilla_recovers_random_truths(chinchilla_design, chinchilla_starts, E, A, B, alpha, beta, loss):
    truth = {"E": E, "A": A, "B": B, "alpha": alpha, "beta": beta}
    n, d = chinchilla_design["N"], chinchilla_design["D"]
    fit = sj.fit("chinchilla", x={"N": n, "D": d}, y=chinchilla_loss(truth, n, d), loss=loss, starts=chinchilla_starts)
    assert fit.stats["n_screened"] == len(chinchilla_starts) and 1 <= fit.n_starts <= len(chinchilla_starts)
    assert fit.n_converged >= 1
    assert fit.objective < 1e-20
    assert_recovers(fit, truth, rel=1e-5)


def test_chinchilla_recovers_with_lbfgs(chinchilla_design, chinchilla_starts):
    n, d = chinchilla_design["N"], chinchilla_design["D"]
    fit = sj.fit(
        "chinchilla",
        x={"N": n, "D": d},
        y=chinchilla_loss(TRUTH, n, d),
        loss="squared_log",
        starts=chinchilla_starts,
        method="lbfgs",
    )
    assert fit.n_converged >= 1
    assert_recovers(fit, TRUTH, rel=1e-5)


def test_chinchilla_recovers_with_small_noise(chinchilla_design, chinchilla_starts):
    n, d = chinchilla_design["N"], chinchilla_design["D"]
    noise = np.random.default_rng(7).normal(0.0, 0.005, n.size)
    y = chinchilla_loss(TRUTH, n, d) * np.exp(noise)
    fit = sj.fit("chinchilla", x={"N": n, "D": d}, y=y, loss="squared_log", starts=chinchilla_starts)
    assert_recovers(fit, {"E": TRUTH["E"], "alpha": TRUTH["alpha"], "beta": TRUTH["beta"]}, rel=0.05)
    table = fit.table()
    z = (table["value"] - pd.Series(TRUTH)) / table["stderr"]
    assert np.all(np.abs(z) < 4), z


# --- other built-in laws, noise-free ----------------------------------------

X1 = np.geomspace(1e6, 1e10, 12)


def test_power_recovers():
    truth = {"E": 2.0, "A": 300.0, "alpha": 0.3}
    fit = sj.fit("power", x={"x": X1}, y=truth["E"] + truth["A"] * X1 ** -truth["alpha"])
    assert fit.stats["n_screened"] == sj.laws.get("power").n_starts
    assert_recovers(fit, truth, rel=1e-6)


@pytest.mark.parametrize("alpha", [0.3, -0.2])
def test_powerlaw_recovers_falling_and_rising(alpha):
    fit = sj.fit("powerlaw", x={"x": X1}, y=300.0 * X1**-alpha)
    assert_recovers(fit, {"A": 300.0, "alpha": alpha}, rel=1e-8)
    assert fit.objective < 1e-20


def test_kaplan_recovers_the_paper_values(chinchilla_design):
    # Kaplan et al. 2020's fit: alpha_N = 0.076, alpha_D = 0.103, Nc = 6.4e13, Dc = 1.8e13.
    truth = {"Nc": 6.4e13, "Dc": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}
    n, d = chinchilla_design["N"], chinchilla_design["D"]
    y = ((truth["Nc"] / n) ** (truth["alpha_N"] / truth["alpha_D"]) + truth["Dc"] / d) ** truth["alpha_D"]
    fit = sj.fit("kaplan", x={"N": n, "D": d}, y=y)
    assert_recovers(fit, truth, rel=1e-6)


def test_zero_weights_equal_dropping_points(example_frame, chinchilla_starts):
    x, kw = {"N": "N", "D": "D"}, {"y": "loss", "loss": "squared_log", "starts": chinchilla_starts}
    w = np.r_[np.ones(72), np.zeros(9)]
    weighted = sj.fit("chinchilla", example_frame.assign(w=w), x=x, weights="w", **kw)
    dropped = sj.fit("chinchilla", example_frame.iloc[:72], x=x, **kw)
    for k in NAMES:
        assert weighted.params[k] == pytest.approx(dropped.params[k], rel=1e-6)
    assert weighted.objective == pytest.approx(dropped.objective, rel=1e-9)


# --- prediction -------------------------------------------------------------


@pytest.fixture
def renamed_fit(example_frame, chinchilla_starts):
    frame = example_frame.rename(columns={"N": "params", "D": "tokens", "loss": "final_loss"})
    fit = sj.fit(
        "chinchilla",
        frame,
        x={"N": "params", "D": "tokens"},
        y="final_loss",
        loss="squared_log",
        starts=chinchilla_starts,
    )
    return fit, frame


def test_predict_on_a_dict_of_inputs(renamed_fit):
    fit, _ = renamed_fit
    n, d = np.array([1e8, 7e10]), np.array([2e9, 1.4e12])
    np.testing.assert_allclose(fit.predict({"N": n, "D": d}).y, chinchilla_loss(fit.params, n, d), rtol=1e-12)
    np.testing.assert_allclose(fit.predict({"N": 1e9, "D": 2e10}).y, chinchilla_loss(fit.params, 1e9, 2e10), rtol=1e-12)


def test_predict_on_a_frame_with_the_original_column_names(renamed_fit):
    fit, frame = renamed_fit
    table = fit.predict(frame)
    assert list(table.index) == list(frame.index)  # the caller's index is kept
    pred = table.y.to_numpy()
    assert pred.shape == (81,)
    np.testing.assert_allclose(pred, chinchilla_loss(fit.params, frame["params"], frame["tokens"]), rtol=1e-12)
    np.testing.assert_allclose(np.log(pred) - np.log(frame["final_loss"]), fit.residuals, atol=1e-12)
    assert fit.predict_draws(frame).shape == (1, 81)


def test_predict_names_what_is_missing_or_bad(renamed_fit):
    fit, _ = renamed_fit
    with pytest.raises(sj.DataError, match=r"new inputs lack 'D' \(or column 'tokens'\)"):
        fit.predict({"N": [1e9]})
    with pytest.raises(sj.DataError, match="new input 'N' has non-positive values"):
        fit.predict({"N": [0.0], "D": [1e9]})
    with pytest.raises(sj.DataError, match="new input 'D' has missing or infinite values"):
        fit.predict({"N": [1e9], "D": [np.nan]})


# --- table and standard errors ----------------------------------------------


def test_table_has_values_and_finite_positive_stderr(renamed_fit):
    fit, _ = renamed_fit
    table = fit.table()
    assert list(table.index) == list(NAMES)
    assert table.index.name == "param"
    assert list(table.columns) == ["value", "stderr", "lo", "hi"]
    assert table["value"].to_dict() == fit.params
    assert np.all(np.isfinite(table["stderr"])) and np.all(table["stderr"] > 0)
    cov = fit.covariance()
    np.testing.assert_allclose(cov.to_numpy(), cov.to_numpy().T, rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), table["stderr"], rtol=1e-12)


def _log_chinchilla(xdata, E, A, B, alpha, beta):
    n, d = xdata
    return np.log(E + A * n**-alpha + B * d**-beta)


def _log_chinchilla_jac(xdata, E, A, B, alpha, beta):
    n, d = xdata
    a, b = A * n**-alpha, B * d**-beta
    loss = E + a + b
    return np.stack([1 / loss, a / A / loss, b / B / loss, -a * np.log(n) / loss, -b * np.log(d) / loss], axis=1)


@pytest.mark.parametrize("weighted", [False, True])
def test_stderr_matches_scipy_curve_fit(example_frame, chinchilla_starts, weighted):
    """Gauss-Newton covariance s^2 (J^T W J)^-1 on log loss, against SciPy's curve_fit (MINPACK) from the truth."""
    n, d, y = (example_frame[c].to_numpy() for c in ("N", "D", "loss"))
    w = np.random.default_rng(3).uniform(0.5, 2.0, y.size) if weighted else np.ones(y.size)
    fit = sj.fit(
        "chinchilla",
        example_frame.assign(w=w),
        x={"N": "N", "D": "D"},
        y="loss",
        weights="w",
        loss="squared_log",
        starts=chinchilla_starts,
    )
    # sigma = 1/sqrt(w) makes curve_fit minimise sum(w r^2); absolute_sigma=False scales by sum(w r^2)/(n - p).
    popt, pcov = curve_fit(
        _log_chinchilla,
        (n, d),
        np.log(y),
        p0=[TRUTH[k] for k in NAMES],
        sigma=1 / np.sqrt(w),
        jac=_log_chinchilla_jac,
        ftol=1e-14,
        xtol=1e-14,
        gtol=1e-14,
        maxfev=10_000,
    )
    table = fit.table()
    np.testing.assert_allclose(table["value"], popt, rtol=1e-6)
    np.testing.assert_allclose(table["stderr"], np.sqrt(np.diag(pcov)), rtol=1e-4)
    np.testing.assert_allclose(fit.covariance().to_numpy(), pcov, rtol=1e-3, atol=1e-12 * np.abs(pcov).max())

    # And the formula itself, in NumPy at scalejax's optimum.
    jac = _log_chinchilla_jac((n, d), *table["value"])
    r = _log_chinchilla((n, d), *table["value"]) - np.log(y)
    s2 = np.sum(w * r**2) / (y.size - 5)
    expected = s2 * np.linalg.inv(jac.T @ (w[:, None] * jac))
    np.testing.assert_allclose(fit.covariance().to_numpy(), expected, rtol=1e-6, atol=1e-12 * np.abs(expected).max())


# --- regressions of fixed bugs ----------------------------------------------


def test_predict_on_a_frame_with_integer_column_labels():
    frame = pd.DataFrame({0: X1, 1: 300.0 * X1**-0.3})
    fit = sj.fit("powerlaw", frame, x={"x": 0}, y=1)
    np.testing.assert_allclose(fit.predict(frame).y, frame[1], rtol=1e-8)


def test_starts_as_a_dict_of_lists():
    law = sj.laws.get("powerlaw")
    try:
        u = make_starts(law, {"A": [1.0, 2.0], "alpha": [0.1, 0.2]})
    except sj.ScalejaxError:
        return  # refusing a dict of lists would also be fine
    np.testing.assert_allclose(np.exp(u[:, 0]), [1.0, 2.0])
    np.testing.assert_allclose(u[:, 1], [0.1, 0.2])
