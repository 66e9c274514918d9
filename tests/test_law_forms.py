"""The seed laws' forms and options: inputs defined at 0, shared exponents, effective sizes, caps."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import scalejax as sj


def start_params(law):
    return dict(zip(law.param_names, law.unpack(np.asarray(law.start_grid()[0]), xp=np).values(), strict=True))


ZERO_OK = [n for n in sj.laws.available() if set(sj.laws.get(n).inputs) - set(sj.laws.get(n).positive_inputs)]


def test_some_laws_are_defined_at_zero():
    assert set(ZERO_OK) >= {
        "sigmoid_floor",
        "downstream_exp",
        "densing",
        "densing_capability",
        "ptq_degradation",
        "fp_quant",
    }


@pytest.mark.parametrize("name", ZERO_OK)
def test_inputs_not_declared_positive_accept_zero(name):
    law = sj.laws.get(name)
    at_zero = [k for k in law.inputs if k not in law.positive_inputs]
    x = {k: np.array([0.0 if k in at_zero else 1e9]) for k in law.inputs}
    with jax.enable_x64(True):
        y = np.asarray(law.predict(start_params(law), {k: jnp.asarray(v) for k, v in x.items()}))
    assert np.all(np.isfinite(y)), (name, at_zero, y)


def test_zero_passes_validation_only_where_a_law_is_defined():
    frame = pd.DataFrame({"L": [0.0, 0.8, 1.0, 1.2, 1.5], "acc": [1.0, 0.7, 0.55, 0.4, 0.3]})
    sj.Data.from_frame(frame, x={"L": "L"}, y="acc", law=sj.laws.get("sigmoid_floor"), positive_y=False)
    with pytest.raises(sj.DataError, match="non-positive"):
        sj.Data.from_frame(
            frame.assign(L=frame["L"] + 0), x={"x": "L"}, y="acc", law=sj.laws.get("power"), positive_y=False
        )


def test_declared_positive_inputs_of_the_seed_laws():
    expected = {
        "sigmoid_floor": (),
        "downstream_exp": (),
        "densing": (),
        "densing_capability": (),
        "ptq_degradation": ("N", "D"),
        "fp_quant": ("N", "D", "B"),
        "lr_annealing": ("S1",),
        "chinchilla": ("N", "D"),
        "data_filtering": ("n", "S"),
    }
    for name, positive in expected.items():
        assert sj.laws.get(name).positive_inputs == positive, name


def test_sigmoid_floor_top_option():
    assert sj.laws.get("sigmoid_floor").params[1].upper == 1.0
    percent = sj.laws.sigmoid_floor_law(top=100.0)
    assert (percent.params[0].lower, percent.params[1].upper) == (-100.0, 100.0)
    free = sj.laws.sigmoid_floor_law(top=None)
    assert free.params[1].upper is None and free.params[0].lower is None
    with pytest.raises(sj.LawError, match="top must be"):
        sj.laws.sigmoid_floor_law(top=0)


def test_multilingual_pairs_share_one_exponent():
    truth = {"en_de": (40.0, 0.9), "en_fr": (25.0, 0.7), "de_en": (60.0, 1.1)}  # beta, L_inf per pair; alpha 0.22
    n = np.geomspace(1e7, 1e10, 8)
    frame = pd.concat(
        [pd.DataFrame({"N": n, "pair": pair, "loss": beta * n**-0.22 + l_inf}) for pair, (beta, l_inf) in truth.items()]
    )
    law = sj.laws.multilingual_nmt_law(list(truth))
    fit = sj.fit(law, frame, x={"N": "N", "group": "pair"}, y="loss", loss="squared_log")
    table = law.group_params(fit.params)
    assert table["alpha"].nunique() == 1 and table["alpha"].iloc[0] == pytest.approx(0.22, rel=1e-6)
    for pair, (beta, l_inf) in truth.items():
        assert table.loc[pair, "beta"] == pytest.approx(beta, rel=1e-5)
        assert table.loc[pair, "L_inf"] == pytest.approx(l_inf, rel=1e-6)


def test_nmt_reference_sizes_only_rescale_alpha():
    p = {"alpha": 0.9, "p_e": 0.2, "p_d": 0.35, "L_inf": 1.4}
    other = sj.laws.nmt_law(ref_encoder=5e7, ref_decoder=2e8)
    q = {**p, "alpha": p["alpha"] * (1e8 / 5e7) ** p["p_e"] * (1e8 / 2e8) ** p["p_d"]}
    x = {"N_e": np.array([3e7, 1e9]), "N_d": np.array([2e8, 5e7])}
    with jax.enable_x64(True):
        np.testing.assert_allclose(other.predict(q, x), sj.laws.get("nmt").predict(p, x), rtol=1e-12)


def test_densing_effective_size_inverts_the_two_steps():
    loss = {"E": 0.0, "A": 50.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}
    cap = {"c": 0.7, "gamma": -4.0, "l": 2.5, "d": 0.25}
    n, d = np.array([1e8, 1e9, 1e10]), np.array([1e11, 1e12, 1e12])
    with jax.enable_x64(True):
        step1 = sj.laws.get("chinchilla").predict(loss, {"N": n, "D": d})
        score = np.asarray(sj.laws.get("densing_capability").predict(cap, {"L": step1}))
    np.testing.assert_allclose(sj.laws.densing_effective_params(loss, cap, score, d), n, rtol=1e-8)
    assert np.isnan(sj.laws.densing_effective_params(loss, cap, [0.99], [1e12])[0])  # above the score's range


def test_data_filtering_is_a_power_law_before_the_first_repeat_and_nan_past_its_cap():
    p = {"a": 3.0, "b": -0.12, "tau": 4.0, "d": 0.15}
    n = np.geomspace(1e5, 1e6, 5)
    law = sj.laws.data_filtering_law(max_repeats=10)
    with jax.enable_x64(True):
        np.testing.assert_allclose(law.predict(p, {"n": n, "S": np.full(5, 1e6)}), 0.15 + 3.0 * n**-0.12, rtol=1e-12)
        beyond = law.predict(p, {"n": np.array([2e7]), "S": np.array([1e6])})
    assert np.isnan(beyond[0])  # 20 passes over the pool, more than max_repeats
    with pytest.raises(sj.LawError, match="max_repeats"):
        sj.laws.data_filtering_law(max_repeats=0)


def test_every_seed_law_names_its_paper_and_equation():
    for name in (
        "data_filtering",
        "nmt",
        "multilingual_nmt",
        "fp_quant",
        "lowbit_ptq",
        "loglinear",
        "data_constrained_full",
        "densing_capability",
    ):
        law = sj.laws.get(name)
        assert law.reference and law.equation, name
