"""IsoFLOP analysis (Approach 2): NumPy polyfit reference, exact recovery, real isoFLOP profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import SHARED_DATA

import scalejax as sj

ISOFLOPS = SHARED_DATA / "isoflops" / "isoflops.csv"


def profiles(exponent=0.5, coefficient=0.1, noise=0.0, seed=0):
    """Five budgets, nine sizes each, loss an exact parabola in log N around N* = coefficient C^exponent."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in (1e18, 1e19, 1e20, 1e21, 1e22):
        n_opt = coefficient * c**exponent
        for n in n_opt * np.geomspace(0.1, 8.0, 9):
            loss = 2.0 + 0.05 * np.log(n / n_opt) ** 2 + noise * rng.standard_normal()
            rows.append({"params": n, "budget": c, "loss": loss})
    return pd.DataFrame(rows)


def test_exact_parabolas_give_the_true_vertices_and_power_law():
    iso = sj.analysis.isoflop(profiles(), n_boot=50)
    truth = 0.1 * iso.budgets.compute**0.5
    np.testing.assert_allclose(iso.budgets.N, truth, rtol=1e-8)
    np.testing.assert_allclose(iso.budgets.loss, 2.0, rtol=1e-10)
    np.testing.assert_allclose(iso.budgets.D, iso.budgets.compute / (6 * truth), rtol=1e-8)
    assert iso.power_law.loc["N", "exponent"] == pytest.approx(0.5, abs=1e-9)
    assert iso.power_law.loc["N", "coefficient"] == pytest.approx(0.1, rel=1e-7)
    assert iso.power_law.loc["D", "exponent"] == pytest.approx(0.5, abs=1e-9)
    assert iso.predict(1e24).N.iloc[0] == pytest.approx(0.1 * 1e12, rel=1e-7)


def test_vertices_and_power_law_match_numpy_polyfit_on_noisy_profiles():
    frame = profiles(exponent=0.45, noise=0.01, seed=3)
    iso = sj.analysis.isoflop(frame, n_boot=400, seed=1)
    log_opt = []
    for c, group in frame.groupby("budget"):
        c2, c1, c0 = np.polyfit(np.log(group.params), group.loss, 2)
        log_opt.append(-c1 / (2 * c2))
        row = iso.budgets.set_index("compute").loc[c]
        assert row.N == pytest.approx(np.exp(log_opt[-1]), rel=1e-8)
        assert row.loss == pytest.approx(c0 - c1**2 / (4 * c2), rel=1e-10)
        assert row.N_lo < row.N < row.N_hi
    slope, intercept = np.polyfit(np.log(iso.budgets.compute), log_opt, 1)
    law = iso.power_law.loc["N"]
    assert law.exponent == pytest.approx(slope, rel=1e-8)
    assert law.coefficient == pytest.approx(np.exp(intercept), rel=1e-6)
    assert law.exponent_lo < 0.45 < law.exponent_hi
    pred = iso.predict([1e23, 1e25])
    assert np.all((pred.N_lo < pred.N) & (pred.N < pred.N_hi))


def test_synthetic_chinchilla_profiles_recover_the_law_exponent():
    frame = sj.datasets.load_example("chinchilla")
    iso = sj.analysis.isoflop(frame, N="N", loss="loss", compute="C", n_boot=400)
    p = sj.datasets._generate.CHINCHILLA_TRUTH
    law = iso.power_law.loc["N"]
    assert law.exponent_lo < p["beta"] / (p["alpha"] + p["beta"]) < law.exponent_hi


def test_real_chinchilla_isoflop_profiles():
    if not ISOFLOPS.is_file():
        pytest.skip(f"{ISOFLOPS} not found (../shared/data is absent)")
    runs = pd.read_csv(ISOFLOPS)
    frame = runs[(runs.experiment == "epochai_chinchilla__massivetext__chinchilla") & ~runs.outlier]
    iso = sj.analysis.isoflop(frame, n_boot=1000)
    law = iso.power_law.loc["N"]
    # Hoffmann et al. report a = 0.49 (0.462, 0.534) for Approach 2; the digitised profiles give about 0.54.
    assert 0.45 < law.exponent < 0.6
    assert law.exponent_lo < law.exponent < law.exponent_hi
    assert len(iso.budgets) == 7


def test_bad_profiles_fail_clearly():
    frame = profiles()
    few = frame[~((frame.budget == 1e19) & (frame.index % 9 > 1))]
    with pytest.raises(sj.DataError, match="fewer than 3"):
        sj.analysis.isoflop(few, n_boot=10)
    hill = frame.assign(loss=lambda f: np.where(f.budget == 1e20, 4.0 - f.loss, f.loss))
    with pytest.raises(sj.DataError, match="no minimum"):
        sj.analysis.isoflop(hill, n_boot=10)
    with pytest.raises(sj.DataError, match="tokens"):
        sj.analysis.isoflop(frame, N="tokens", n_boot=10)
