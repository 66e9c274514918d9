"""Every built-in law recovers a known synthetic truth from its default start grid.

The truths are computed here with NumPy from each paper's equation (not with
the law's own JAX function), so a wrong sign or exponent in a law fails.
"""

import numpy as np
import pytest

import scalejax as sj

RNG = np.random.default_rng(0)
N_GRID, D_GRID = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 3e9, 6), np.geomspace(1e9, 3e11, 5)))
X_GRID = np.geomspace(1e3, 1e9, 14)


def _overtrain(p, x):
    c, m = 6 * x["N"] * x["D"], x["D"] / x["N"]
    return p["E"] + (p["a"] * m ** p["eta"] + p["b"] * m ** -p["eta"]) * c ** -p["eta"]


def _data_constrained(p, x):
    r = x["D"] / x["U"] - 1
    d_eff = x["U"] + x["U"] * p["R_star"] * (1 - np.exp(-r / p["R_star"]))
    return p["E"] + p["A"] / x["N"] ** p["alpha"] + p["B"] / d_eff ** p["beta"]


def _bnsl(p, x, k):
    y = p["b"] * x["x"] ** -p["c0"]
    for i in range(1, k + 1):
        y = y * (1 + (x["x"] / p[f"d{i}"]) ** (1 / p[f"f{i}"])) ** (-p[f"c{i}"] * p[f"f{i}"])
    return p["a"] + y


def _precision(p, x):
    n_eff = x["N"] * (1 - np.exp(-x["P"] / p["gamma"]))
    return p["A"] * n_eff ** -p["alpha"] + p["B"] * x["D"] ** -p["beta"] + p["E"]


def _m4_truth(p, x):
    # Solve (eps - eps_inf) / (eps_0 - eps)^alpha = beta x^-c by SciPy's brentq, point by point.
    from scipy.optimize import brentq

    eps0 = p["eps_inf"] + p["delta0"]
    return np.array(
        [
            brentq(
                lambda e, xi=xi: (e - p["eps_inf"]) - p["beta"] * xi ** -p["c"] * (eps0 - e) ** p["alpha"],
                p["eps_inf"],
                eps0,
                xtol=1e-15,
                rtol=1e-15,
            )
            for xi in x["x"]
        ]
    )


def _data_filtering(p, x):
    # Pass by pass, as Goyal et al. describe it: the error falls by (n_j / n_{j-1})^(b_j) over pass j.
    out = []
    for n, s in zip(x["n"], x["S"], strict=True):
        excess = p["a"] * min(n, s) ** p["b"]
        j = 2
        while n > (j - 1) * s:
            b_j = p["b"] * 0.5 ** ((j - 1) / p["tau"])
            excess *= (min(n, j * s) / ((j - 1) * s)) ** b_j
            j += 1
        out.append(p["d"] + excess)
    return np.array(out)


def _data_constrained_full(p, x):
    # Written as in huggingface/datablations' README (Muennighoff et al.'s parametric fit).
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    rd = np.maximum(x["D"] / x["U"] - 1, 0)
    un = np.minimum(x["N"], (x["U"] * g) ** (p["beta"] / p["alpha"]) * g)
    rn = np.maximum(x["N"] / un - 1, 0)
    n_eff = un + un * p["R_N_star"] * (1 - np.exp(-rn / p["R_N_star"]))
    d_eff = x["U"] + x["U"] * p["R_star"] * (1 - np.exp(-rd / p["R_star"]))
    return p["E"] + p["A"] / n_eff ** p["alpha"] + p["B"] / d_eff ** p["beta"]


def _fp_quant(p, x):
    chinchilla = p["n"] / x["N"] ** p["alpha"] + p["d"] / x["D"] ** p["beta"] + p["eps"]
    penalty = x["D"] ** p["beta"] / x["N"] ** p["alpha"] * np.log2(x["B"])
    return chinchilla + penalty / (p["gamma"] * (x["E"] + 0.5) ** p["delta"] * (x["M"] + 0.5) ** p["nu"])


ND = {"N": N_GRID, "D": D_GRID}
PRECISION_DESIGN = {
    "N": np.tile(np.geomspace(3e7, 1e9, 4), 9),
    "D": np.repeat(np.geomspace(1e9, 1e11, 3), 12),
    "P": np.tile(np.repeat([3.0, 4.0, 6.0], 4), 3),
}
U = np.repeat([1e8, 1e9, 1e10], 12)
DATA_DESIGN = {"N": np.tile(np.geomspace(1e7, 1e9, 4), 9), "D": U * np.tile(np.repeat([1.0, 4.0, 40.0], 4), 3), "U": U}

# name -> (truth, inputs, y(truth, inputs) written with NumPy, relative tolerance on the parameters)
CASES = {
    "overtrain": ({"E": 1.8, "a": 120.0, "b": 400.0, "eta": 0.12}, ND, _overtrain, 1e-5),
    "data_constrained": (
        {"E": 1.9, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.3, "R_star": 15.4},
        DATA_DESIGN,
        _data_constrained,
        1e-4,
    ),
    "downstream_exp": (
        {"eps": 0.75, "k": 5.0, "gamma": 1.5},
        {"L": np.linspace(2.0, 4.0, 12)},
        lambda p, x: p["eps"] - p["k"] * np.exp(-p["gamma"] * x["L"]),
        1e-6,
    ),
    "sigmoid_floor": (
        {"a": -0.6, "b": 0.85, "k": 6.0, "L0": 1.1},
        {"L": np.linspace(0.6, 1.8, 15)},
        lambda p, x: p["a"] / (1 + np.exp(-p["k"] * (x["L"] - p["L0"]))) + p["b"],
        1e-6,
    ),
    "isik_bleu": (
        {"A": 2.0, "alpha": 0.2, "beta": 2.5},
        {"D": np.geomspace(1e6, 1e10, 10)},
        lambda p, x: np.log(p["A"] * x["D"] ** p["alpha"]) ** p["beta"],
        1e-6,
    ),
    "exp_power": (
        {"c": 300.0, "alpha": 0.35},
        {"x": np.geomspace(1e6, 1e10, 10)},
        lambda p, x: np.exp(-p["c"] * x["x"] ** -p["alpha"]),
        1e-6,
    ),
    "bnsl": (
        {"a": 0.05, "b": 2.0, "c0": 0.05, "c1": 1.2, "d1": 3e5, "f1": 0.4},
        {"x": X_GRID},
        lambda p, x: _bnsl(p, x, 1),
        1e-4,
    ),
    "bnsl2": (
        {"a": 0.05, "b": 2.0, "c0": 0.05, "c1": 1.0, "d1": 1e4, "f1": 0.3, "c2": -0.6, "d2": 1e7, "f2": 0.3},
        {"x": np.geomspace(1e2, 1e10, 24)},
        lambda p, x: _bnsl(p, x, 2),
        1e-3,
    ),
    "precision": (
        {"E": 1.7, "A": 500.0, "B": 2000.0, "alpha": 0.32, "beta": 0.3, "gamma": 2.5},
        PRECISION_DESIGN,
        _precision,
        1e-4,
    ),
    "ptq_degradation": (
        {"C_T": 0.3, "gamma_post": 0.9, "gamma_D": 0.4, "gamma_N": 0.5},
        PRECISION_DESIGN,
        lambda p, x: p["C_T"] * np.exp(-x["P"] / p["gamma_post"]) * x["D"] ** p["gamma_D"] / x["N"] ** p["gamma_N"],
        1e-6,
    ),
    "optimal_lr": (
        {"c": 1.79, "a": -0.713, "b": 0.307},
        ND,
        lambda p, x: p["c"] * x["N"] ** p["a"] * x["D"] ** p["b"],
        1e-8,
    ),
    "optimal_batch": (
        {"c": 0.58, "a": 0.05, "b": 0.571},
        ND,
        lambda p, x: p["c"] * x["N"] ** p["a"] * x["D"] ** p["b"],
        1e-8,
    ),
    "densing": (
        {"A": 0.007, "B": -2.0},
        {"t": np.linspace(-200.0, 500.0, 12)},
        lambda p, x: np.exp(p["A"] * x["t"] + p["B"]),
        1e-8,
    ),
    "henighan": (
        {"L_inf": 1.6, "x0": 3e6, "alpha": 0.15},
        {"x": X_GRID},
        lambda p, x: p["L_inf"] + (p["x0"] / x["x"]) ** p["alpha"],
        1e-5,
    ),
    "kaplan_steps": (
        {"Nc": 6.5e13, "Sc": 2.1e3, "alpha_N": 0.076, "alpha_S": 0.76},
        {"N": N_GRID, "S": np.tile(np.geomspace(1e3, 1e6, 5), 6)},
        lambda p, x: (p["Nc"] / x["N"]) ** p["alpha_N"] + (p["Sc"] / x["S"]) ** p["alpha_S"],
        1e-5,
    ),
    "critical_batch": (
        {"B_star": 2e8, "alpha_B": 0.21},
        {"L": np.linspace(1.5, 4.0, 8)},
        lambda p, x: p["B_star"] * x["L"] ** (-1 / p["alpha_B"]),
        1e-8,
    ),
    "data_filtering": (
        {"a": 3.0, "b": -0.12, "tau": 4.0, "d": 0.15},
        {"n": np.tile(np.geomspace(3e5, 1e8, 12), 3), "S": np.repeat([1e6, 1e7, 1e8], 12)},
        _data_filtering,
        1e-4,
    ),
    "data_constrained_full": (
        {"E": 1.87, "A": 520.0, "B": 1490.0, "alpha": 0.35, "beta": 0.35, "R_star": 15.4, "R_N_star": 5.3},
        {
            "N": np.tile(np.geomspace(1e8, 3e10, 6), 8),
            "D": np.repeat(np.geomspace(2e9, 4e11, 4), 12),
            "U": np.tile(np.repeat([1e9, 1e11], 6), 4),
        },
        _data_constrained_full,
        1e-4,
    ),
    "densing_capability": (
        {"c": 0.7, "gamma": -4.0, "l": 2.6, "d": 0.25},
        {"L": np.linspace(1.8, 3.6, 12)},
        lambda p, x: p["c"] / (1 + np.exp(-p["gamma"] * (x["L"] - p["l"]))) + p["d"],
        1e-6,
    ),
    "nmt": (
        {"alpha": 0.9, "p_e": 0.2, "p_d": 0.35, "L_inf": 1.4},
        {"N_e": np.tile(np.geomspace(1e7, 3e9, 6), 5), "N_d": np.repeat(np.geomspace(1e7, 3e9, 5), 6)},
        lambda p, x: p["alpha"] * (1e8 / x["N_e"]) ** p["p_e"] * (1e8 / x["N_d"]) ** p["p_d"] + p["L_inf"],
        1e-6,
    ),
    "multilingual_nmt": (
        {"beta": 40.0, "alpha": 0.22, "L_inf": 0.9},
        {"N": np.geomspace(1e7, 1e10, 10)},
        lambda p, x: p["beta"] * x["N"] ** -p["alpha"] + p["L_inf"],
        1e-6,
    ),
    "fp_quant": (
        {"n": 69.0, "alpha": 0.24, "d": 6.9e4, "beta": 0.52, "eps": 1.9, "gamma": 1.1e4, "delta": 3.2, "nu": 2.9},
        {
            "N": np.tile(np.geomspace(4e7, 1e9, 3), 24),
            "D": np.tile(np.repeat(np.geomspace(1e10, 1e11, 2), 3), 12),
            "E": np.tile(np.repeat([1.0, 2.0, 4.0], 6), 4),
            "M": np.tile(np.repeat([1.0, 3.0], 18), 2),
            "B": np.repeat([32.0, 512.0], 36),
        },
        _fp_quant,
        1e-4,
    ),
    "lowbit_ptq": (
        {"k": 0.017, "alpha": 0.23, "beta": 0.53, "gamma": 5.5},
        PRECISION_DESIGN,
        lambda p, x: p["k"] * x["D"] ** p["beta"] / (x["N"] ** p["alpha"] * x["P"] ** p["gamma"]),
        1e-6,
    ),
    "loglinear": (
        {"a": 0.2, "b": 0.05},
        {"x": np.geomspace(1.0, 1e4, 9)},
        lambda p, x: p["a"] + p["b"] * np.log(x["x"]),
        1e-8,
    ),
    "m4": (
        {"eps_inf": 0.05, "delta0": 0.8, "beta": 300.0, "c": 0.4, "alpha": 0.7},
        {"x": np.geomspace(1e2, 1e9, 16)},
        _m4_truth,
        1e-4,
    ),
}


def test_the_library_has_at_least_fifteen_laws_each_with_a_recovery_case():
    laws = sj.laws.available()
    assert len(laws) >= 15
    covered = set(CASES) | {"chinchilla", "kaplan", "power", "powerlaw", "lr_annealing"}
    assert set(laws) <= covered, set(laws) - covered
    for name in laws:
        law = sj.laws.get(name)
        assert law.reference and law.equation, name
        assert law.n_starts <= 300 or name == "chinchilla", (name, law.n_starts)


@pytest.mark.parametrize("name", sorted(CASES))
def test_law_recovers_its_synthetic_truth(name):
    truth, x, truth_fn, rel = CASES[name]
    y = truth_fn(truth, x)
    fit = sj.fit(name, x=x, y=y, loss="squared_log")
    assert fit.objective < 1e-16, fit
    params = _breaks_in_order(fit.params) if name.startswith("bnsl") else fit.params
    for k, v in truth.items():
        assert params[k] == pytest.approx(v, rel=rel, abs=1e-9), (k, fit.params)


def _breaks_in_order(params):
    """A BNSL's breaks are interchangeable: number them by location d."""
    k = sum(1 for name in params if name.startswith("d"))
    order = sorted(range(1, k + 1), key=lambda i: params[f"d{i}"])
    out = {name: params[name] for name in ("a", "b", "c0")}
    for new, old in enumerate(order, start=1):
        out |= {f"{v}{new}": params[f"{v}{old}"] for v in "cdf"}
    return out
