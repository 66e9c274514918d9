"""Data validation: every problem with the input is one clear error naming the column, the rows and the fix."""

import re

import numpy as np
import pandas as pd
import pytest

import scalejax as sj

CHINCHILLA = sj.laws.get("chinchilla")
X = {"N": "params", "D": "tokens"}


@pytest.fixture
def runs():
    """Eight distinct runs with column names unlike the law's input names."""
    n = np.array([1e7, 2e7, 4e7, 8e7, 1.6e8, 3.2e8, 6.4e8, 1.28e9])
    d = np.array([2e9, 5e9, 1e10, 3e10, 6e10, 1e11, 3e11, 6e11])
    loss = 1.8 + 480 * n**-0.35 + 2000 * d**-0.37
    return pd.DataFrame({"params": n, "tokens": d, "final_loss": loss})


def _from_frame(frame, **kwargs):
    kwargs = {"x": X, "y": "final_loss", **kwargs}
    return sj.Data.from_frame(frame, law=CHINCHILLA, **kwargs)


def _fit(frame, **kwargs):
    # Validation happens before any solving: these calls never compile a solver.
    kwargs = {"x": X, "y": "final_loss", **kwargs}
    return sj.fit("chinchilla", frame, starts={"E": 1, "A": 100, "B": 100, "alpha": 0.3, "beta": 0.3}, **kwargs)


ENTRY_POINTS = pytest.mark.parametrize("entry", [_from_frame, _fit], ids=["Data.from_frame", "fit"])


# --- a valid table ----------------------------------------------------------


def test_valid_frame_maps_columns_and_casts_to_float64(runs):
    data = _from_frame(runs)
    assert data.n == 8
    assert set(data.x) == {"N", "D"}
    np.testing.assert_array_equal(data.x["N"], runs["params"].to_numpy())
    np.testing.assert_array_equal(data.y, runs["final_loss"].to_numpy())
    np.testing.assert_array_equal(data.weights, np.ones(8))
    assert data.y.dtype == np.float64
    assert data.columns == {"N": "params", "D": "tokens", "y": "final_loss"}
    np.testing.assert_allclose(data.target(log_scale=True), np.log(data.y))


def test_a_dict_of_columns_is_accepted(runs):
    data = sj.Data.from_frame(runs.to_dict(orient="list"), x=X, y="final_loss", law=CHINCHILLA)
    np.testing.assert_array_equal(data.y, runs["final_loss"].to_numpy())


# --- columns ----------------------------------------------------------------


@ENTRY_POINTS
def test_missing_column_lists_the_columns_there_are(entry, runs):
    with pytest.raises(sj.DataError) as info:
        entry(runs, x={"N": "params", "D": "n_tokens"})
    message = str(info.value)
    assert "column 'n_tokens' (for x['D']) not found" in message
    assert "'params', 'tokens', 'final_loss'" in message


@ENTRY_POINTS
def test_missing_target_column(entry, runs):
    with pytest.raises(sj.DataError, match=r"column 'loss' \(for y\) not found.*'final_loss'"):
        entry(runs, y="loss")


@ENTRY_POINTS
def test_law_input_not_mapped(entry, runs):
    with pytest.raises(sj.DataError, match="law 'chinchilla' takes inputs N, D; missing D") as info:
        entry(runs, x={"N": "params"})
    assert "x={'N': ..., 'D': ...}" in str(info.value)  # says how to fix it


def test_mapping_an_input_the_law_does_not_take(runs):
    with pytest.raises(sj.DataError, match="not inputs of the law: C"):
        _from_frame(runs.assign(flops=6 * runs["params"] * runs["tokens"]), x={**X, "C": "flops"})


def test_x_must_be_a_mapping(runs):
    with pytest.raises(sj.DataError, match="x must map each law input to a column"):
        sj.Data.from_frame(runs, x=["params", "tokens"], y="final_loss")


def test_duplicated_column_name_in_use(runs):
    frame = runs.copy()
    frame.columns = ["params", "params", "final_loss"]
    with pytest.raises(sj.DataError, match="column name 'params' appears more than once"):
        sj.Data.from_frame(frame, x={"N": "params"}, y="final_loss")


def test_empty_table():
    with pytest.raises(sj.DataError, match="no rows"):
        sj.Data.from_frame(pd.DataFrame({"params": [], "tokens": [], "final_loss": []}), x=X, y="final_loss")


# --- values -----------------------------------------------------------------


@ENTRY_POINTS
def test_non_numeric_strings_name_the_column_and_rows(entry, runs):
    frame = runs.astype({"tokens": object})
    frame.loc[2, "tokens"] = "1e10 tokens"
    frame.loc[5, "tokens"] = "n/a"
    with pytest.raises(sj.DataError) as info:
        entry(frame)
    message = str(info.value)
    assert "column 'tokens' has 2 non-numeric values" in message
    assert "rows 2, 5" in message
    assert "'1e10 tokens'" in message
    assert "must hold numbers" in message


def test_numeric_strings_are_read_as_numbers(runs):
    data = _from_frame(runs.assign(tokens=runs["tokens"].map(repr)))
    np.testing.assert_array_equal(data.x["D"], runs["tokens"].to_numpy())


def test_true_false_column_is_refused(runs):
    with pytest.raises(sj.DataError, match="column 'tokens' holds true/false values"):
        _from_frame(runs.assign(tokens=True))


@ENTRY_POINTS
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, None])
def test_missing_and_infinite_values_name_the_rows(entry, runs, bad):
    frame = runs.astype({"final_loss": object})
    frame.loc[[1, 6], "final_loss"] = bad
    with pytest.raises(
        sj.DataError, match=re.escape("column 'final_loss' has 2 missing or infinite values (rows 1, 6)")
    ):
        entry(frame)


def test_nullable_integer_column_with_missing_value(runs):
    ints = pd.array([10**7, 2 * 10**7, None, 8 * 10**7, 10**8, 2 * 10**8, 4 * 10**8, 8 * 10**8], dtype="Int64")
    with pytest.raises(sj.DataError, match=re.escape("column 'params' has 1 missing or infinite values (row 2)")):
        _from_frame(runs.assign(params=ints))


@ENTRY_POINTS
@pytest.mark.parametrize(("column", "role"), [("params", "input N"), ("tokens", "input D"), ("final_loss", None)])
def test_non_positive_values_name_column_rows_and_bound(entry, runs, column, role):
    frame = runs.copy()
    frame.loc[3, column] = 0.0
    frame.loc[7, column] = -1.0
    with pytest.raises(sj.DataError) as info:
        entry(frame)
    message = str(info.value)
    assert f"column {column!r} has 2 non-positive values (rows 3, 7)" in message
    assert "must be > 0" in message
    assert (f"it is {role}" if role else "log scale") in message


def test_rows_are_named_by_the_frame_index(runs):
    frame = runs.set_axis([f"run-{i}" for i in range(8)])
    frame.loc["run-4", "tokens"] = -5.0
    with pytest.raises(sj.DataError, match=r"\(row run-4\)"):
        _from_frame(frame)


def test_many_bad_rows_are_summarised(runs):
    frame = pd.concat([runs] * 3, ignore_index=True)
    frame["tokens"] = frame["tokens"] * np.arange(1, 25)  # distinct rows
    frame.loc[:11, "final_loss"] = -1.0
    with pytest.raises(
        sj.DataError, match=re.escape("12 non-positive values (rows 0, 1, 2, 3, 4, 5, 6, 7 and 4 more)")
    ):
        _from_frame(frame)


def test_raw_scale_fit_accepts_non_positive_targets(runs):
    data = sj.Data.from_frame(runs.assign(final_loss=-runs["final_loss"]), x=X, y="final_loss", positive_y=False)
    assert np.all(data.y < 0)


def test_inputs_outside_positive_inputs_may_be_negative():
    @sj.law(params=["a", "b"], inputs=["x", "shift"], positive_inputs=["x"])
    def shifted(p, x):
        return p["a"] * x["x"] + p["b"] + x["shift"]

    data = sj.Data.from_arrays({"x": [1.0, 2.0, 3.0], "shift": [-1.0, 0.0, 1.0]}, [1.0, 2.0, 3.0], law=shifted)
    np.testing.assert_array_equal(data.x["shift"], [-1.0, 0.0, 1.0])
    with pytest.raises(sj.DataError, match="column 'x' has 1 non-positive"):
        sj.Data.from_arrays({"x": [1.0, 0.0, 3.0], "shift": [-1.0, 0.0, 1.0]}, [1.0, 2.0, 3.0], law=shifted)


# --- size and weights -------------------------------------------------------


@ENTRY_POINTS
def test_fewer_points_than_parameters(entry, runs):
    with pytest.raises(sj.DataError, match="only 4 weighted points for the 5 parameters of law 'chinchilla'"):
        entry(runs.iloc[:4])


@ENTRY_POINTS
def test_negative_weights_name_the_rows(entry, runs):
    frame = runs.assign(w=[1.0, -1.0, 1.0, 1.0, 1.0, -0.5, 1.0, 1.0])
    with pytest.raises(
        sj.DataError, match=re.escape("column 'w' has 2 negative weights (rows 1, 5); weights must be >= 0")
    ):
        entry(frame, weights="w")


def test_all_zero_weights(runs):
    with pytest.raises(sj.DataError, match="column 'w' has no positive weight"):
        _from_frame(runs.assign(w=0.0), weights="w")


def test_zero_weights_count_against_the_size_check(runs):
    with pytest.raises(sj.DataError, match="only 4 weighted points"):
        _from_frame(runs.assign(w=[1.0] * 4 + [0.0] * 4), weights="w")


def test_weights_and_groups_are_kept(runs):
    w = np.linspace(0.5, 2, 8)
    data = _from_frame(runs.assign(w=w, size=["s", "m"] * 4), weights="w", group="size")
    np.testing.assert_array_equal(data.weights, w)
    assert list(data.groups) == ["s", "m"] * 4
    assert data.columns["weights"] == "w"
    assert data.columns["group"] == "size"


def test_missing_group_labels(runs):
    with pytest.raises(sj.DataError, match=re.escape("column 'size' has 1 missing group labels (row 3)")):
        _from_frame(runs.assign(size=["s", "m", "s", None, "s", "m", "s", "m"]), group="size")


# --- duplicates -------------------------------------------------------------


def test_duplicated_rows_warn(runs):
    frame = pd.concat([runs, runs.iloc[[2]]], ignore_index=True)
    with pytest.warns(sj.DataWarning, match=re.escape("2 rows repeat the same inputs and y (rows 2, 8)")):
        data = _from_frame(frame)
    assert data.n == 9  # nothing is dropped


def test_same_inputs_with_different_loss_do_not_warn(runs):
    frame = pd.concat([runs, runs.iloc[[2]].assign(final_loss=3.0)], ignore_index=True)
    _from_frame(frame)  # pyproject turns DataWarning into an error


# --- dtypes and arrays ------------------------------------------------------


def test_float32_and_integer_columns_fit(chinchilla_design, chinchilla_starts):
    n = np.round(chinchilla_design["N"]).astype(np.int64)
    d = np.round(chinchilla_design["D"]).astype(np.int64)
    loss = (1.8 + 480 * n.astype(float) ** -0.35 + 2000 * d.astype(float) ** -0.37).astype(np.float32)
    frame = pd.DataFrame({"params": n, "tokens": d, "final_loss": loss})
    assert frame.dtypes.tolist() == [np.int64, np.int64, np.float32]

    data = sj.Data.from_frame(frame, x=X, y="final_loss", law=CHINCHILLA)
    assert all(a.dtype == np.float64 for a in (data.x["N"], data.x["D"], data.y))
    np.testing.assert_array_equal(data.y, loss.astype(np.float64))

    fit = sj.fit("chinchilla", frame, x=X, y="final_loss", loss="squared_log", starts=chinchilla_starts)
    same = sj.fit(
        "chinchilla", frame.astype(np.float64), x=X, y="final_loss", loss="squared_log", starts=chinchilla_starts
    )
    assert fit.params == same.params  # the cast happens once, up front
    # float32 rounding of the loss (~6e-8 relative) barely moves the optimum.
    for k, v in {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37}.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-2)


def test_from_arrays(runs):
    x = {"N": runs["params"].to_numpy(), "D": list(runs["tokens"])}
    data = sj.Data.from_arrays(x, runs["final_loss"].to_numpy(), weights=2.0, law=CHINCHILLA)
    np.testing.assert_array_equal(data.x["D"], runs["tokens"].to_numpy())
    np.testing.assert_array_equal(data.weights, np.full(8, 2.0))
    assert data.columns["N"] == "N"


def test_from_arrays_validates_like_from_frame(runs):
    with pytest.raises(sj.DataError, match=re.escape("column 'N' has 1 non-positive values (row 0)")):
        sj.Data.from_arrays({"N": [-1.0, *runs["params"][1:]], "D": runs["tokens"]}, runs["final_loss"], law=CHINCHILLA)


def test_from_arrays_length_mismatch():
    with pytest.raises(sj.DataError, match=re.escape("inputs and y have different lengths: {'N': 3, 'D': 2, 'y': 3}")):
        sj.Data.from_arrays({"N": [1e7, 2e7, 3e7], "D": [1e9, 2e9]}, [3.0, 2.9, 2.8])
    with pytest.raises(sj.DataError, match="different lengths"):
        sj.fit("powerlaw", x={"x": [1.0, 2.0, 3.0]}, y=[3.0, 2.0])


def test_fit_needs_a_frame_or_arrays():
    with pytest.raises(sj.ScalejaxError, match="pass a DataFrame"):
        sj.fit("powerlaw", x=None, y=None)


# --- fit options ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"loss": "absolute"}, sj.ScalejaxError, "unknown loss 'absolute'; choose one of huber, squared_log, squared"),
        ({"delta": 0.0}, sj.ScalejaxError, "Huber delta must be a positive number"),
        ({"delta": float("nan")}, sj.ScalejaxError, "Huber delta must be a positive number"),
        ({"max_steps": 0}, sj.ScalejaxError, "max_steps must be a positive integer"),
        ({"max_steps": 2.5}, sj.ScalejaxError, "max_steps must be a positive integer"),
        ({"method": "newton"}, sj.ScalejaxError, "unknown solver 'newton'; choose one of lm, lbfgs"),
        ({"starts": {"A": 1.0, "alpha": 0.1}}, sj.LawError, re.escape("needs values for ['E', 'B', 'beta']")),
        ({"starts": pd.DataFrame({"E": [1.0]})}, sj.ScalejaxError, "starts lack columns for parameters"),
        ({"starts": [[-1.0, 1.0, 1.0, 0.3, 0.3]]}, sj.LawError, "parameter 'E' = -1.0 lies outside its bounds"),
    ],
)
def test_bad_fit_options(runs, options, error, match):
    options = {"starts": {"E": 1, "A": 100, "B": 100, "alpha": 0.3, "beta": 0.3}, **options}
    with pytest.raises(error, match=match):
        sj.fit("chinchilla", runs, x=X, y="final_loss", **options)


def test_unknown_law_name_in_fit(runs):
    with pytest.raises(sj.LawError, match="did you mean 'chinchilla'"):
        sj.fit("chinchila", runs, x=X, y="final_loss")


# --- fits that cannot succeed -----------------------------------------------


@sj.law(params=[sj.Param("A", lower=0)], inputs=["x"])
def negative_line(p, x):
    # Predicts y < 0 for every A > 0: no positive loss can be fitted on the log scale.
    return -p["A"] * x["x"]


def test_law_that_cannot_predict_the_data_raises_fit_error():
    with pytest.raises(sj.FitError) as info:
        sj.fit(negative_line, x={"x": np.arange(1.0, 7.0)}, y=np.linspace(3.0, 2.0, 6), starts=[[1.0], [10.0]])
    message = str(info.value)
    assert "\n" not in message
    assert "law 'negative_line' did not fit: none of 2 starts converged (2 nonfinite)" in message


def test_too_few_steps_raise_fit_error_not_nan_params():
    x = np.geomspace(1.0, 1e4, 6)
    with pytest.raises(sj.FitError, match=r"none of 1 starts converged \(1 max_steps\).*raise max_steps"):
        sj.fit("powerlaw", x={"x": x}, y=5 * x**-0.3, starts={"A": 1.0, "alpha": -0.5}, max_steps=1)


def test_kaplan_on_rising_loss_gives_fit_error_or_finite_params():
    # Kaplan's exponents are > 0, so its loss must fall with N and D; this loss rises.
    n, d = np.geomspace(1e7, 1e9, 6), np.geomspace(1e9, 1e11, 6)
    start = {"Nc": 1e13, "Dc": 1e10, "alpha_N": 0.03, "alpha_D": 0.03}
    try:
        fit = sj.fit("kaplan", x={"N": n, "D": d}, y=np.geomspace(2.0, 4.0, 6), starts=start)
    except sj.FitError:
        return
    assert all(np.isfinite(v) for v in fit.params.values())
    assert np.all(np.isfinite(fit.residuals))


def test_from_arrays_with_an_input_named_y():
    data = sj.Data.from_arrays({"y": [1.0, 2.0, 3.0]}, [5.0, 6.0, 7.0])
    np.testing.assert_array_equal(data.x["y"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(data.y, [5.0, 6.0, 7.0])


def test_negative_weights_message_uses_row_name(runs):
    with pytest.raises(sj.DataError, match=r"\(line 1\)"):
        _from_frame(runs.assign(w=[1.0, -1.0, *[1.0] * 6]), weights="w", row_name="line")
