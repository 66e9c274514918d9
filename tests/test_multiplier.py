"""compute_multiplier: the effective compute of recipe A over recipe B, checked against closed forms."""

import numpy as np
import pytest

import scalejax as sj
from scalejax._constrain import constrain

TRUTH = {"E": 1.8, "A": 480.0, "B": 2090.0, "alpha": 0.34, "beta": 0.37}
STARTS = {"E": 1.5, "A": 300.0, "B": 1000.0, "alpha": 0.3, "beta": 0.3}
N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e8, 1e10, 5), np.geomspace(1e10, 1e12, 5)))


def chinchilla(p, n, d):
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def frontier_compute(p, loss, k=6.0):
    """Least k N D reaching `loss` under Chinchilla's law, by brute force over N on a fine grid (NumPy)."""
    n = np.geomspace(1e6, 1e16, 200_001)
    # For each N, the tokens reaching the loss; then the cheapest N.
    excess = loss - p["E"] - p["A"] / n ** p["alpha"]
    d = np.where(excess > 0, (p["B"] / np.where(excess > 0, excess, 1.0)) ** (1 / p["beta"]), np.inf)
    return float(np.min(k * n * d))


@pytest.fixture(scope="module")
def two_recipes():
    """Recipe B sees a third of the useful data of A at every (N, D): B needs exactly 3x the compute."""
    fit_a = sj.fit("chinchilla", x={"N": N, "D": D}, y=chinchilla(TRUTH, N, D), loss="squared_log", starts=STARTS)
    fit_b = sj.fit("chinchilla", x={"N": N, "D": D}, y=chinchilla(TRUTH, N, D / 3), loss="squared_log", starts=STARTS)
    return fit_a, fit_b


def test_a_recipe_wasting_two_thirds_of_its_data_needs_three_times_the_compute(two_recipes):
    fit_a, fit_b = two_recipes
    at_loss = sj.analysis.compute_multiplier(fit_a, fit_b, loss=[2.1, 2.4])
    np.testing.assert_allclose(at_loss["multiplier"], 3.0, rtol=1e-6)
    at_budget = sj.analysis.compute_multiplier(fit_a, fit_b, compute=[1e21, 1e24])
    np.testing.assert_allclose(at_budget["multiplier"], 3.0, rtol=1e-6)
    # The closed-form compute of a loss agrees with a brute-force search over model sizes.
    for loss, c in zip(at_loss["loss"], at_loss["compute_a"], strict=True):
        assert c == pytest.approx(frontier_compute(TRUTH, loss), rel=1e-5)


def test_the_numerical_frontier_of_any_law_of_n_and_d_agrees_with_the_closed_form(two_recipes):
    fit_a, _ = two_recipes
    # An equal law that is not the built-in object takes the numerical route (grid + Newton, then a root in log C).
    law = constrain("chinchilla", fixed={"E": TRUTH["E"]})
    fit_n = sj.fit(law, x={"N": N, "D": D}, y=chinchilla(TRUTH, N, D), loss="squared_log", starts=STARTS)
    fit_nb = sj.fit(law, x={"N": N, "D": D}, y=chinchilla(TRUTH, N, D / 3), loss="squared_log", starts=STARTS)
    table = sj.analysis.compute_multiplier(fit_n, fit_nb, loss=[2.1])
    assert table["multiplier"].iloc[0] == pytest.approx(3.0, rel=1e-5)
    closed = sj.analysis.compute_multiplier(fit_a, fit_a, loss=[2.1])
    assert table["compute_a"].iloc[0] == pytest.approx(closed["compute_a"].iloc[0], rel=1e-5)


def test_laws_of_compute_alone_and_an_unreachable_loss():
    c = np.geomspace(1e18, 1e21, 8)
    fit_a = sj.fit("power", x={"x": c}, y=2.0 + 1e3 * c**-0.15, loss="squared_log")
    fit_b = sj.fit("power", x={"x": c}, y=2.0 + 1e3 * (c / 2) ** -0.15, loss="squared_log")
    table = sj.analysis.compute_multiplier(fit_a, fit_b, loss=[2.5, 1.9])
    assert table["multiplier"].iloc[0] == pytest.approx(2.0, rel=1e-8)
    assert np.isnan(table["multiplier"].iloc[1]) and table["n_valid"].iloc[1] == 0  # below both floors


def test_bootstrap_interval_brackets_the_central_multiplier():
    rng = np.random.default_rng(0)
    y_a = chinchilla(TRUTH, N, D) * np.exp(0.005 * rng.standard_normal(N.size))
    y_b = chinchilla(TRUTH, N, D / 3) * np.exp(0.005 * rng.standard_normal(N.size))
    boot_a = sj.bootstrap("chinchilla", x={"N": N, "D": D}, y=y_a, n=30, seed=0, starts=STARTS)
    boot_b = sj.bootstrap("chinchilla", x={"N": N, "D": D}, y=y_b, n=30, seed=1, starts=STARTS)
    table = sj.analysis.compute_multiplier(boot_a, boot_b, compute=[1e22], level=0.9)
    row = table.iloc[0]
    assert row["n_valid"] == 30
    assert row["multiplier_lo"] < row["multiplier"] < row["multiplier_hi"]
    # The interval is the quantiles of the paired draws' ratios, each recomputed here by brute force.
    ratios = []
    for pa, pb in zip(boot_a.samples.to_dict("records"), boot_b.samples.to_dict("records"), strict=True):
        n = np.geomspace(1e6, 1e16, 200_001)
        loss_a = np.min(chinchilla(pa, n, 1e22 / (6 * n)))
        ratios.append(frontier_compute(pb, loss_a) / 1e22)
    lo, hi = np.quantile(ratios, [0.05, 0.95])
    assert row["multiplier_lo"] == pytest.approx(lo, rel=1e-3) and row["multiplier_hi"] == pytest.approx(hi, rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({}, "exactly one"), ({"loss": [2.0], "compute": [1e21]}, "exactly one"), ({"loss": [-1.0]}, "> 0")],
)
def test_bad_requests_are_one_clear_error(two_recipes, kwargs, match):
    with pytest.raises(sj.ScalejaxError, match=match):
        sj.analysis.compute_multiplier(*two_recipes, **kwargs)


def test_a_law_of_other_inputs_is_refused(two_recipes):
    p = {"E": 1.9, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.3, "R_star": 15.0}
    x = {"N": N, "D": D, "U": D / 4}
    with pytest.warns(sj.FitWarning):  # one unique-token ratio: R_star is not identified, which does not matter here
        fit = sj.fit("data_constrained", x=x, y=sj.laws.get("data_constrained").predict(p, x), loss="squared_log")
    with pytest.raises(sj.LawError, match="a compute multiplier needs"):
        sj.analysis.compute_multiplier(fit, two_recipes[1], loss=[2.2])
