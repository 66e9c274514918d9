"""save/load: every kind of result survives a round trip exactly, without pickle, with clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import scalejax as sj

X = {"N": "N", "D": "D"}


@pytest.fixture(scope="module")
def frame():
    frame = sj.datasets.load_example("chinchilla")
    frame["budget"] = [f"C={c:.0e}" for c in frame["C"]]
    frame.index = pd.Index([f"run{i}" for i in range(len(frame))], name="run")
    return frame


@pytest.fixture(scope="module")
def boot(example_bootstrap):
    return example_bootstrap


def test_fit_round_trip(frame, chinchilla_starts, tmp_path):
    fit = sj.fit("chinchilla", frame, x=X, y="loss", group="budget", starts=chinchilla_starts)
    path = sj.save(fit, tmp_path / "fit.npz")
    back = sj.load(path)
    assert type(back) is sj.Fit and back.law is sj.laws.get("chinchilla")
    assert back.params == fit.params and back.objective == fit.objective
    assert (back.n_starts, back.n_converged, back.n_at_best) == (fit.n_starts, fit.n_converged, fit.n_at_best)
    assert back.status_counts == fit.status_counts and back.loss == fit.loss
    for name in ("N", "D"):
        np.testing.assert_array_equal(back.data.x[name], fit.data.x[name])
    np.testing.assert_array_equal(back.data.groups, fit.data.groups)
    assert list(back.data.index) == list(fit.data.index) and back.data.index.name == "run"
    assert back.columns == fit.columns
    pd.testing.assert_frame_equal(back.table(), fit.table())
    np.testing.assert_array_equal(back.predict({"N": [7e10], "D": [1.4e12]}), fit.predict({"N": [7e10], "D": [1.4e12]}))


def test_bootstrap_round_trip_without_pickle(boot, tmp_path):
    path = sj.save(boot, tmp_path / "boot.npz")
    with np.load(path, allow_pickle=False) as npz:  # every entry reads without pickle
        header = json.loads(str(npz["header"]))
        assert all(npz[k].dtype != object for k in npz.files)
    assert header["format_version"] == sj._io.FORMAT_VERSION and header["kind"] == "Bootstrap"
    back = sj.load(path)
    assert type(back) is sj.Bootstrap
    assert (back.scheme, back.n_resamples, back.n_converged, back.level) == ("rows", 60, boot.n_converged, 0.95)
    pd.testing.assert_frame_equal(back.samples, boot.samples)
    pd.testing.assert_frame_equal(back.interval(0.9), boot.interval(0.9))
    np.testing.assert_array_equal(back.objective, boot.objective)
    assert back.fit.params == boot.fit.params
    # Every attribute survives, those of the warm starts included.
    assert back == boot
    np.testing.assert_array_equal(back.warm_starts, boot.warm_starts)
    assert (back.n_rescued, back.seed) == (boot.n_rescued, boot.seed)
    other = sj.Bootstrap(
        boot.fit,
        boot.u,
        boot.objective,
        scheme="groups",
        seed=7,
        n_resamples=80,
        warm_starts=boot.warm_starts,
        n_rescued=3,
        level=0.9,
    )
    back = sj.load(sj.save(other, tmp_path / "other.npz"))
    assert back == other and back.level == 0.9 and back.n_failed == 80 - boot.n_converged


def test_plain_draws_and_custom_law_need_the_law(boot, tmp_path):
    @sj.law(params=[sj.Param("E", lower=0), sj.Param("A", lower=0), "alpha"], inputs=["N"])
    def my_law(p, x):
        return p["E"] + p["A"] * x["N"] ** -p["alpha"]

    u = np.array([[0.1, 2.0, 0.3], [0.2, 2.5, 0.35]])
    draws = sj.Draws(my_law, u, columns={"N": "params"})
    path = sj.save(draws, tmp_path / "draws.npz")
    with pytest.raises(sj.LawError, match=r"not built in; pass the same law.*law=my_law"):
        sj.load(path)
    back = sj.load(path, law=my_law)
    assert type(back) is sj.Draws and back.columns == {"N": "params"}
    np.testing.assert_array_equal(back.u, u)
    with pytest.raises(sj.LawError, match="parameters"):
        sj.load(path, law=sj.laws.get("power"))

    plain = sj.Draws(boot.law, boot.u, columns=boot.columns)
    back = sj.load(sj.save(plain, tmp_path / "plain.npz"))
    pd.testing.assert_frame_equal(back.samples, plain.samples)


def test_bad_files_and_versions_fail_clearly(boot, tmp_path):
    path = sj.save(sj.Draws(boot.law, boot.u), tmp_path / "d.npz")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(str(arrays["header"]))
    header["format_version"] = 99
    arrays["header"] = np.array(json.dumps(header))
    future = tmp_path / "future.npz"
    np.savez(future, **arrays)
    with pytest.raises(sj.ScalejaxError, match="format version 99 is not supported"):
        sj.load(future)
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not a zip")
    with pytest.raises(sj.ScalejaxError, match="not a scalejax result file"):
        sj.load(garbage)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(sj.ScalejaxError, match="no readable header"):
        sj.load(other)
    with pytest.raises(sj.ScalejaxError, match="no such file"):
        sj.load(tmp_path / "missing.npz")

    class Other(sj.Draws):
        pass

    with pytest.raises(sj.ScalejaxError, match="cannot save a Other"):
        sj.save(Other(boot.law, boot.u), tmp_path / "o.npz")
    assert not (tmp_path / "o.npz").exists()
