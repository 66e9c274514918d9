"""Fixed and tied parameters (`constrain`, `expand`) against SciPy fits of the reduced law."""

import numpy as np
import pytest
from scipy.optimize import least_squares

import scalejax as sj
from scalejax._constrain import constrain, expand

STARTS = [(1.0, 100.0, 100.0, 0.3, 0.3), (2.0, 1000.0, 3000.0, 0.4, 0.3), (1.5, 300.0, 1000.0, 0.3, 0.4)]


def _scipy_reduced(frame, fixed, tied, loss, delta=1e-3):
    """Least squares (SciPy) of the reduced Chinchilla on the same summed objective; the best of a few starts.

    The free parameters are E, A, B on the log scale and the exponents as they are;
    fixed values are substituted and tied exponents share one value.
    """
    names = ("E", "A", "B", "alpha", "beta")
    followers = {f: g[0] for g in tied for f in g[1:]}
    free = [k for k in names if k not in fixed and k not in followers]
    n, d, y = (frame[c].to_numpy(dtype=float) for c in ("N", "D", "loss"))

    def full(theta):
        p = dict(zip(free, theta, strict=True))
        p = {k: (np.exp(v) if k in ("E", "A", "B") else v) for k, v in p.items()}
        p |= fixed
        p |= {f: p[lead] for f, lead in followers.items()}
        return p

    def resid(theta):
        p = full(theta)
        return np.log(p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]) - np.log(y)

    best = None
    for start in STARTS:
        s = dict(zip(names, start, strict=True))
        theta0 = [np.log(s[k]) if k in ("E", "A", "B") else s[k] for k in free]
        kw = {"loss": "huber", "f_scale": delta} if loss == "huber" else {}
        res = least_squares(resid, theta0, method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=20000, **kw)
        if best is None or res.cost < best.cost:
            best = res
    return full(best.x), best.cost


@pytest.mark.parametrize(
    ("fixed", "tied", "loss"),
    [
        ({"alpha": 0.34}, [], "huber"),
        ({}, [("alpha", "beta")], "squared_log"),
        ({"E": 1.8}, [("alpha", "beta")], "huber"),
    ],
)
def test_constrained_fit_matches_scipy_on_the_reduced_law(example_frame, fixed, tied, loss):
    law = constrain("chinchilla", fixed=fixed, tied=tied)
    assert set(law.param_names) == {"E", "A", "B", "alpha", "beta"} - set(fixed) - {g[1] for g in tied}
    starts = {k: np.array([s[i] for s in STARTS]) for i, k in enumerate(("E", "A", "B", "alpha", "beta"))}
    fit = sj.fit(law, example_frame, x={"N": "N", "D": "D"}, y="loss", loss=loss, starts=law.free(starts))
    ref, ref_cost = _scipy_reduced(example_frame, fixed, tied, loss)
    # SciPy's cost is sum(rho(r)) with rho(r) = r^2 / 2 (and Huber's linear tails), the same sum as scalejax's.
    assert fit.objective == pytest.approx(ref_cost, rel=1e-6)
    full = expand(law, fit.params)
    assert list(full) == ["E", "A", "B", "alpha", "beta"]
    for k, v in ref.items():
        assert full[k] == pytest.approx(v, rel=2e-4), (k, full, ref)
    for k, v in fixed.items():
        assert full[k] == v
    for group in tied:
        assert full[group[0]] == full[group[1]]


def test_equal_calls_give_equal_laws_and_nothing_constrained_is_the_law_itself():
    a = constrain("chinchilla", fixed={"alpha": 0.34}, tied=[("A", "B")])
    b = constrain(sj.laws.get("chinchilla"), fixed={"alpha": 0.34}, tied=[["A", "B"]])
    assert a == b and hash(a) == hash(b)
    assert a != constrain("chinchilla", fixed={"alpha": 0.35}, tied=[("A", "B")])
    assert constrain("chinchilla") is sj.laws.get("chinchilla")
    assert a.roles() == {"E": "free", "A": "free", "B": "tied to A", "alpha": "fixed", "beta": "free"}


def test_tied_parameter_takes_the_intersection_of_the_ranges_and_start_grid_drops_fixed_columns():
    law = sj.Law(
        name="two_exponents",
        fn=lambda p, x: p["a"] * x["x"] ** -p["b"] + p["c"] * x["x"] ** -p["d"],
        params=(
            sj.Param("a", lower=0, grid=(1.0, 2.0)),
            sj.Param("b", lower=0, upper=2, grid=(0.5, 1.5)),
            sj.Param("c", lower=0, grid=(1.0,)),
            sj.Param("d", lower=0.1, upper=1, grid=(0.2, 0.5)),
        ),
        inputs=("x",),
    )
    tied = constrain(law, tied=[("b", "d")], fixed={"c": 3.0})
    b = tied.params[tied.param_names.index("b")]
    assert (b.lower, b.upper) == (0.1, 1)
    assert set(b.grid) == {0.5, 0.2}
    grid = tied.unpack(tied.start_grid(), xp=np)
    assert set(zip(grid["a"].tolist(), grid["b"].tolist(), strict=True)) == {(1.0, 0.5), (2.0, 0.5)}


def test_expand_fills_draws_arrays_and_sample_tables():
    law = constrain("chinchilla", fixed={"E": 1.7}, tied=[("alpha", "beta")])
    free = {"A": np.array([400.0, 410.0]), "B": np.array([1e3, 1.1e3]), "alpha": np.array([0.3, 0.31])}
    full = expand(law, free)
    np.testing.assert_array_equal(full["E"], [1.7, 1.7])
    np.testing.assert_array_equal(full["beta"], free["alpha"])
    import pandas as pd

    table = expand(law, pd.DataFrame(free, index=[5, 6]))
    assert list(table.columns) == ["E", "A", "B", "alpha", "beta"] and list(table.index) == [5, 6]
    # A constrained law predicts exactly what the full law predicts at the expanded values.
    x = {"N": np.array([1e8, 1e9]), "D": np.array([1e10, 1e11])}
    one = {k: float(v[0]) for k, v in free.items()}
    full_one = expand(law, one)
    want = sj.laws.get("chinchilla").predict(full_one, x)
    np.testing.assert_allclose(law.predict(one, x), want, rtol=1e-12)


def test_bootstrap_of_a_constrained_law_keeps_the_fixed_value_in_every_draw(example_frame, chinchilla_starts):
    law = constrain("chinchilla", fixed={"E": 1.8172})
    boot = sj.bootstrap(
        law, example_frame, x={"N": "N", "D": "D"}, y="loss", n=8, seed=0, starts=law.free(chinchilla_starts)
    )
    samples = expand(law, boot.samples)
    assert (samples["E"] == 1.8172).all() and samples.shape == (8, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fixed": {"gamma": 1.0}}, "not parameters"),
        ({"fixed": {"E": -1.0}}, "outside the parameter's range"),
        ({"fixed": {"E": float("nan")}}, "finite"),
        ({"fixed": {"E": "a"}}, "must be a number"),
        ({"tied": [("alpha",)]}, "at least two"),
        ({"tied": ("alpha", "beta")}, "list of groups"),
        ({"tied": [("alpha", "beta"), ("beta", "A")]}, "more than one tied group"),
        ({"fixed": {"alpha": 0.3}, "tied": [("alpha", "beta")]}, "both fixed and tied"),
        ({"fixed": {k: 1.0 for k in ("E", "A", "B", "alpha", "beta")}}, "no parameter to fit"),
    ],
)
def test_bad_constraints_are_one_clear_law_error(kwargs, match):
    with pytest.raises(sj.LawError, match=match):
        constrain("chinchilla", **kwargs)


def test_a_fixed_value_on_a_closed_bound_is_allowed():
    law = constrain("chinchilla", fixed={"E": 0.0})
    y = law.predict({"A": 400.0, "B": 1000.0, "alpha": 0.3, "beta": 0.3}, {"N": np.array([1e9]), "D": np.array([1e10])})
    assert y[0] == pytest.approx(400 / 1e9**0.3 + 1000 / 1e10**0.3)


def test_fit_bootstrap_and_posterior_take_fixed_and_tied_and_tables_show_them(example_frame, tmp_path):
    """`sj.fit(fixed=, tied=)` is the reduced law's SciPy fit; every table lists each parameter with its role."""
    fixed, tied = {"E": 1.8}, [("alpha", "beta")]
    starts = {k: np.array([s[i] for s in STARTS]) for i, k in enumerate(("E", "A", "B", "alpha", "beta"))}
    x = {"N": "N", "D": "D"}
    fit = sj.fit("chinchilla", example_frame, x=x, y="loss", fixed=fixed, tied=tied, starts=starts)
    ref, ref_cost = _scipy_reduced(example_frame, fixed, tied, "huber")
    assert fit.objective == pytest.approx(ref_cost, rel=1e-6)
    table = fit.table()
    assert list(table.index) == ["E", "A", "B", "alpha", "beta"]
    assert list(table.role) == ["fixed", "free", "free", "free", "tied to alpha"]
    assert table.loc["E", ["value", "lo", "hi", "stderr"]].tolist() == [1.8, 1.8, 1.8, 0.0]
    assert table.loc["beta"].drop("role").equals(table.loc["alpha"].drop("role"))
    for k, v in ref.items():
        assert table.loc[k, "value"] == pytest.approx(v, rel=2e-4)
    assert fit.params == {
        "E": 1.8,
        **{k: table.loc[k, "value"] for k in ("A", "B", "alpha")},
        "beta": fit.params["alpha"],
    }
    assert list(fit.params) == ["E", "A", "B", "alpha", "beta"]
    assert sj.load(sj.save(fit, tmp_path / "fit.npz")) == fit  # the constrained law travels with the result

    boot = sj.bootstrap("chinchilla", example_frame, x=x, y="loss", n=16, fixed=fixed, tied=tied, starts=starts)
    assert boot.law == fit.law and boot.table().loc["E", "std"] == 0.0
    assert list(boot.table().role.iloc[-1:]) == ["noise"]
    with pytest.raises(sj.ScalejaxError, match="fixed"):
        sj.bootstrap(fit, n=4, fixed=fixed)
    post = sj.posterior("chinchilla", example_frame, x=x, y="loss", fixed=fixed, method="laplace", draws=200)
    assert post.law.param_names == ("A", "B", "alpha", "beta")
    assert post.table().loc["E", "sd"] == 0.0 and post.table().loc["beta", "role"] == "free"
