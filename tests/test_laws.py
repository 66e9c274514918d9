"""Laws: the registry, the public contract, closed forms, parameter transforms and custom laws."""

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scalejax as sj

BUILT_IN = ("chinchilla", "kaplan", "power", "powerlaw")


# --- registry ---------------------------------------------------------------


def test_available_lists_the_built_in_laws():
    names = sj.laws.available()
    assert set(BUILT_IN) <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", BUILT_IN)
def test_get_returns_the_law_of_that_name(name):
    law = sj.laws.get(name)
    assert isinstance(law, sj.Law)
    assert law.name == name
    assert sj.laws.get(law) is law  # a Law passes through unchanged


def test_unknown_law_suggests_the_closest_name():
    with pytest.raises(sj.LawError, match="did you mean 'chinchilla'") as info:
        sj.laws.get("chinchila")
    message = str(info.value)
    assert "'chinchila'" in message
    for name in BUILT_IN:
        assert name in message  # lists what is available


def test_unknown_law_without_close_match_lists_available():
    with pytest.raises(sj.LawError, match="unknown law 'zzzz'") as info:
        sj.laws.get("zzzz")
    assert "did you mean" not in str(info.value)
    assert "chinchilla" in str(info.value)


def test_law_error_is_a_value_error():
    assert issubclass(sj.LawError, sj.ScalejaxError)
    assert issubclass(sj.ScalejaxError, ValueError)


def test_register_refuses_to_shadow_a_built_in():
    with pytest.raises(sj.LawError, match="already registered"):
        sj.laws.register(sj.laws.get("chinchilla"))


# --- contract ---------------------------------------------------------------


def test_chinchilla_contract():
    law = sj.laws.get("chinchilla")
    assert law.param_names == ("E", "A", "B", "alpha", "beta")
    assert law.inputs == ("N", "D")
    assert law.positive_inputs == ("N", "D")
    assert law.n_params == 5
    assert "Hoffmann" in law.reference


@pytest.mark.parametrize(
    ("name", "params", "inputs"),
    [
        ("kaplan", ("Nc", "Dc", "alpha_N", "alpha_D"), ("N", "D")),
        ("power", ("E", "A", "alpha"), ("x",)),
        ("powerlaw", ("A", "alpha"), ("x",)),
    ],
)
def test_other_built_in_contracts(name, params, inputs):
    law = sj.laws.get(name)
    assert law.param_names == params
    assert law.inputs == inputs
    assert law.reference  # each built-in law cites its paper


def test_chinchilla_default_grid_is_hoffmann_et_al():
    law = sj.laws.get("chinchilla")
    assert law.n_starts == 4500
    grid = law.start_grid()
    assert grid.shape == (4500, 5)
    # Hoffmann et al. 2022, Appendix D.2: log E in {-1, -.5, ..., 1}, log A and log B in
    # {0, 5, ..., 25}, alpha and beta in {0, .5, ..., 2}. E, A and B are log-transformed.
    expected = np.array(
        list(
            itertools.product(
                np.linspace(-1, 1, 5),
                np.arange(0, 26, 5),
                np.arange(0, 26, 5),
                np.linspace(0, 2, 5),
                np.linspace(0, 2, 5),
            )
        )
    )
    np.testing.assert_allclose(grid, expected, atol=1e-12)
    with jax.enable_x64(True):
        natural = {k: np.asarray(v) for k, v in law.unpack(jnp.asarray(grid)).items()}
    np.testing.assert_allclose(np.unique(np.log(natural["E"])), [-1, -0.5, 0, 0.5, 1], atol=1e-12)
    np.testing.assert_allclose(np.unique(np.log(natural["A"])), [0, 5, 10, 15, 20, 25], atol=1e-12)
    np.testing.assert_allclose(np.unique(natural["alpha"]), [0, 0.5, 1, 1.5, 2], atol=1e-12)


# --- closed forms -----------------------------------------------------------

# Each law's formula written again with NumPy, and a sampler of plausible parameters.
CLOSED_FORMS = {
    "chinchilla": (
        lambda p, x: p["E"] + p["A"] * x["N"] ** -p["alpha"] + p["B"] * x["D"] ** -p["beta"],
        lambda rng: {
            "E": rng.uniform(0.5, 3),
            "A": np.exp(rng.uniform(2, 10)),
            "B": np.exp(rng.uniform(2, 10)),
            "alpha": rng.uniform(0.1, 0.8),
            "beta": rng.uniform(0.1, 0.8),
        },
    ),
    "kaplan": (
        lambda p, x: ((p["Nc"] / x["N"]) ** (p["alpha_N"] / p["alpha_D"]) + p["Dc"] / x["D"]) ** p["alpha_D"],
        lambda rng: {
            "Nc": 10 ** rng.uniform(11, 15),
            "Dc": 10 ** rng.uniform(11, 15),
            "alpha_N": rng.uniform(0.03, 0.3),
            "alpha_D": rng.uniform(0.03, 0.3),
        },
    ),
    "power": (
        lambda p, x: p["E"] + p["A"] * x["x"] ** -p["alpha"],
        lambda rng: {"E": rng.uniform(0.1, 3), "A": np.exp(rng.uniform(0, 8)), "alpha": rng.uniform(-0.5, 1.0)},
    ),
    "powerlaw": (
        lambda p, x: p["A"] * x["x"] ** -p["alpha"],
        lambda rng: {"A": np.exp(rng.uniform(0, 8)), "alpha": rng.uniform(-0.5, 1.0)},
    ),
}


def _inputs(law, rng, m=20):
    if law.inputs == ("N", "D"):
        return {"N": 10 ** rng.uniform(6, 11, m), "D": 10 ** rng.uniform(8, 13, m)}
    return {"x": 10 ** rng.uniform(0, 10, m)}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_log_predict_matches_the_closed_form(name):
    law = sj.laws.get(name)
    formula, sample = CLOSED_FORMS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(5):
        p, x = sample(rng), _inputs(law, rng)
        expected = formula(p, x)
        assert np.all(expected > 0)
        with jax.enable_x64(True):
            pj = {k: jnp.asarray(v) for k, v in p.items()}
            xj = {k: jnp.asarray(v) for k, v in x.items()}
            log_pred = np.asarray(law.log_predict(pj, xj))
            pred = np.asarray(law.predict(pj, xj))
            plain = np.asarray(law.fn(pj, xj))
        np.testing.assert_allclose(log_pred, np.log(expected), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(pred, expected, rtol=1e-12)
        np.testing.assert_allclose(plain, expected, rtol=1e-12)  # fn and log_fn agree


# --- parameter transforms ---------------------------------------------------

PARAMS = [
    sj.Param("free"),
    sj.Param("pos", lower=0),
    sj.Param("shifted", lower=-2.5),
    sj.Param("cap", upper=3.0),
    sj.Param("unit", lower=0.0, upper=1.0),
    sj.Param("band", lower=-4.0, upper=10.0),
]


def _inside(p: sj.Param, t: float) -> float:
    """A natural value inside p's bounds, for t in (0, 1)."""
    match p.transform:
        case "identity":
            return 20 * t - 10
        case "lower":
            return p.lower + np.exp(20 * t - 10)
        case "upper":
            return p.upper - np.exp(20 * t - 10)
        case _:
            return p.lower + (p.upper - p.lower) * t


def test_param_transforms_are_chosen_by_bounds():
    assert [p.transform for p in PARAMS] == ["identity", "lower", "lower", "upper", "interval", "interval"]


@settings(max_examples=50, deadline=None)
@given(t=st.floats(0.01, 0.99), which=st.integers(0, len(PARAMS) - 1))
def test_param_round_trip(t, which):
    p = PARAMS[which]
    value = _inside(p, t)
    u = p.inverse(value)
    with jax.enable_x64(True):
        back = float(p.forward(jnp.asarray(u)))
    assert back == pytest.approx(value, rel=1e-10, abs=1e-12)
    assert p.contains(back)


@pytest.mark.parametrize("p", PARAMS, ids=lambda p: p.name)
def test_forward_stays_inside_bounds(p):
    with jax.enable_x64(True):
        values = np.asarray(p.forward(jnp.linspace(-30.0, 30.0, 61)))
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) != 0)  # one-to-one
    if p.lower is not None:
        assert np.all(values > p.lower)
    if p.upper is not None:
        assert np.all(values < p.upper)


def test_default_start_values_lie_inside_bounds():
    for p in PARAMS:
        (start,) = p.start_values()
        assert p.contains(start)


def test_law_pack_unpack_round_trip_for_built_in_laws():
    rng = np.random.default_rng(0)
    for name, (_, sample) in CLOSED_FORMS.items():
        law = sj.laws.get(name)
        values = sample(rng)
        u = law.pack(values)
        assert u.shape == (law.n_params,)
        np.testing.assert_array_equal(law.pack([values[k] for k in law.param_names]), u)
        with jax.enable_x64(True):
            back = {k: float(v) for k, v in law.unpack(jnp.asarray(u)).items()}
        assert list(back) == list(law.param_names)
        for k, v in values.items():
            assert back[k] == pytest.approx(v, rel=1e-12)


def test_pack_handles_a_batch_of_rows():
    law = sj.laws.get("power")
    rows = np.array([[1.0, 10.0, 0.3], [2.0, 100.0, -0.2]])
    u = law.pack(rows)
    assert u.shape == (2, 3)
    np.testing.assert_allclose(u[:, :2], np.log(rows[:, :2]))
    np.testing.assert_allclose(u[:, 2], rows[:, 2])


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"E": -1.0, "A": 1.0, "B": 1.0, "alpha": 0.3, "beta": 0.3}, "parameter 'E' = -1.0 lies outside its bounds"),
        ({"E": 1.0, "A": 0.0, "B": 1.0, "alpha": 0.3, "beta": 0.3}, "parameter 'A' = 0.0 lies outside"),
        ({"E": 1.0, "A": 1.0, "B": np.nan, "alpha": 0.3, "beta": 0.3}, "parameter 'B'"),
        ({"E": 1.0, "A": 1.0, "alpha": 0.3, "beta": 0.3}, re.escape("needs values for ['B']")),
        ([1.0, 1.0, 1.0, 0.3], "has 5 parameters, got 4 values"),
    ],
)
# NumPy warns when it compares the NaN with the bound; the LawError is the point here.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_pack_rejects_bad_values(values, match):
    with pytest.raises(sj.LawError, match=match):
        sj.laws.get("chinchilla").pack(values)


def test_interval_param_rejects_its_open_bounds():
    p = sj.Param("unit", lower=0.0, upper=1.0)
    assert not p.contains(0.0)
    assert not p.contains(1.0)
    law = sj.Law(name="unit_law", fn=lambda p, x: p["unit"] * x["x"], params=(p,), inputs=("x",))
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(sj.LawError, match="outside its bounds"):
            law.pack({"unit": bad})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "not a name"}, "must be a Python identifier"),
        ({"name": "x", "lower": 1.0, "upper": 1.0}, "must be below upper"),
        ({"name": "x", "lower": 0.0, "grid": (1.0, -1.0)}, re.escape("start values [-1.0] lie outside")),
        ({"name": "x", "upper": 2.0, "grid": (2.0,)}, "lie outside its bounds"),
    ],
)
def test_malformed_params_raise(kwargs, match):
    with pytest.raises(sj.LawError, match=match):
        sj.Param(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"params": (), "inputs": ("x",)}, "declares no parameters"),
        ({"params": (sj.Param("a"),), "inputs": ()}, "declares no inputs"),
        ({"params": (sj.Param("a"), sj.Param("a")), "inputs": ("x",)}, "repeats a parameter name"),
        ({"params": (sj.Param("a"),), "inputs": ("x",), "positive_inputs": ("z",)}, "are not inputs"),
    ],
)
def test_malformed_laws_raise(kwargs, match):
    with pytest.raises(sj.LawError, match=match):
        sj.Law(name="bad", fn=lambda p, x: x["x"], **kwargs)


# --- custom laws ------------------------------------------------------------


@sj.law(params=[sj.Param("E", lower=0), sj.Param("A", lower=0), "alpha"], inputs=["N"])
def saturating(p, x):
    # A plain function: no log form, no derivatives.
    return p["E"] + p["A"] * x["N"] ** -p["alpha"]


def test_decorator_builds_a_law():
    assert isinstance(saturating, sj.Law)
    assert saturating.name == "saturating"
    assert saturating.param_names == ("E", "A", "alpha")
    assert saturating.inputs == ("N",)
    assert saturating.positive_inputs == ("N",)
    assert saturating.params[2].transform == "identity"
    assert saturating.n_starts == 1
    assert saturating.name not in sj.laws.available()  # decorating does not register


def test_custom_law_log_predict_is_nan_where_prediction_is_not_positive():
    @sj.law(params=["a"], inputs=["x"])
    def line(p, x):
        return p["a"] * x["x"]

    with jax.enable_x64(True):
        out = np.asarray(line.log_predict({"a": jnp.asarray(-1.0)}, {"x": jnp.asarray([1.0, 2.0])}))
    assert np.all(np.isnan(out))


def test_custom_law_fits_and_recovers_truth():
    truth = {"E": 1.7, "A": 400.0, "alpha": 0.34}
    n = np.geomspace(1e6, 1e10, 15)
    loss = truth["E"] + truth["A"] * n ** -truth["alpha"]
    starts = list(itertools.product((0.5, 2.0), (10.0, 1000.0), (0.1, 0.5)))
    fit = sj.fit(saturating, x={"N": n}, y=loss, starts=starts, loss="squared_log")
    assert fit.n_converged >= 1
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6)
    assert fit.objective < 1e-20
    np.testing.assert_allclose(fit.predict({"N": n}).y, loss, rtol=1e-9)


# --- log_sum_exp ------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    terms=st.lists(
        st.lists(st.floats(-50, 50), min_size=4, max_size=4),
        min_size=1,
        max_size=4,
    )
)
def test_log_sum_exp_matches_numpy(terms):
    arrays = [np.asarray(t) for t in terms]
    expected = np.log(np.sum(np.exp(np.stack(arrays)), axis=0))
    with jax.enable_x64(True):
        got = np.asarray(sj.log_sum_exp(*(jnp.asarray(a) for a in arrays)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_log_sum_exp_is_stable_for_large_and_small_values():
    a = np.array([1000.0, -1000.0, 800.0, 0.0])
    b = np.array([1000.0, -1000.0, 0.0, -np.inf])
    with jax.enable_x64(True):
        got = np.asarray(sj.log_sum_exp(jnp.asarray(a), jnp.asarray(b)))
    # exp(1000) overflows in NumPy; shift by the largest term by hand.
    m = np.maximum(a, b)
    expected = m + np.log(np.exp(a - m) + np.exp(b - m))
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    np.testing.assert_allclose(got[:2], [1000 + np.log(2), -1000 + np.log(2)], rtol=1e-14)
    assert np.all(np.isfinite(got))


def test_log_sum_exp_broadcasts_and_handles_all_minus_inf():
    with jax.enable_x64(True):
        got = np.asarray(sj.log_sum_exp(jnp.asarray([[0.0], [1.0]]), jnp.asarray([0.0, 2.0, -jnp.inf])))
        neg = float(sj.log_sum_exp(jnp.asarray(-jnp.inf), jnp.asarray(-jnp.inf)))
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got[0], [np.log(2), np.log(1 + np.e**2), 0.0], rtol=1e-14)
    assert neg == -np.inf


def test_log_sum_exp_gradient_is_the_softmax():
    a, b, c = 700.0, 699.0, -5.0
    with jax.enable_x64(True):
        grads = jax.grad(lambda t: sj.log_sum_exp(t[0], t[1], t[2]))(jnp.asarray([a, b, c]))
    w = np.exp(np.array([a, b, c]) - a)
    np.testing.assert_allclose(np.asarray(grads), w / w.sum(), rtol=1e-12)


@jax.jit
def _shifted(v):
    return v + 1.0


@sj.law(params=[sj.Param("E", lower=0), sj.Param("A", lower=0), "alpha", "beta"], inputs=["N", "D"])
def _powers_law(p, x):
    """Powers of inputs (rewritten), of a parameter and of an expression (kept), inside and outside jit."""
    return (
        p["E"]
        + p["A"] / x["N"] ** p["alpha"]
        + _shifted(x["D"]) ** -p["beta"]
        + jnp.logaddexp(0.0, -x["D"] / 1e9) * p["E"] ** 2.5
        + 1e-3 * (x["N"] / 1e9) ** p["beta"]
    )


def _law_point():
    p = {"E": 1.7, "A": 406.4, "alpha": 0.34, "beta": 0.28}
    x = {"N": jnp.geomspace(1e7, 1e11, 7), "D": jnp.geomspace(1e9, 1e12, 7)}
    return p, x


def test_powers_of_positive_inputs_become_exp_log_with_the_same_values_and_derivatives():
    with jax.enable_x64(True):
        p, x = _law_point()
        p = {k: jnp.asarray(v) for k, v in p.items()}

        def log_y(q, fast):
            return _powers_law.log_predict(q, x, positive_inputs=fast)

        fast, plain = log_y(p, True), log_y(p, False)
        np.testing.assert_allclose(fast, plain, rtol=1e-13)
        d_fast = jax.jacfwd(log_y)(p, True)
        d_plain = jax.jacfwd(log_y)(p, False)
        for name in p:
            np.testing.assert_allclose(d_fast[name], d_plain[name], rtol=1e-11, err_msg=name)
        # Under vmap as in the solvers, too.
        batch = {k: jnp.stack([v, 1.01 * v]) for k, v in p.items()}
        np.testing.assert_allclose(
            jax.vmap(lambda q: log_y(q, True))(batch), jax.vmap(lambda q: log_y(q, False))(batch), rtol=1e-13
        )
        # The rewrite happened: the input's power is gone, the others stay.
        jaxpr = str(jax.make_jaxpr(lambda q: log_y(q, True))(p))
        plain_jaxpr = str(jax.make_jaxpr(lambda q: log_y(q, False))(p))
    assert plain_jaxpr.count(" pow ") == 4
    assert jaxpr.count(" pow ") == 3


def test_powers_are_left_alone_for_inputs_not_declared_positive():
    law = sj.Law(name="signed", fn=_powers_law.fn, params=_powers_law.params, inputs=("N", "D"), positive_inputs=())
    with jax.enable_x64(True):
        p, x = _law_point()
        jaxpr = str(jax.make_jaxpr(lambda q: law.log_predict(q, x, positive_inputs=True))(p))
    assert jaxpr.count(" pow ") == 4


def test_natural_keeps_the_declared_parameter_order():
    law = sj.laws.get("chinchilla")
    values = law.natural(law.start_grid()[:3])
    assert list(values) == list(law.param_names) == ["E", "A", "B", "alpha", "beta"]
    np.testing.assert_allclose(values["A"], np.exp(law.start_grid()[:3, 1]))
