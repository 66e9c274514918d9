"""Loading untrusted result files: bounded, pickle-free, one clear error for any damage.

`scalejax._npz.read_npz` is checked on hostile `.npz` files (empty,
truncated, CRC-damaged, zip bombs, lying `.npy` headers, object and record
arrays, unknown members, deep or huge JSON headers) and on random damage to a
real saved result: it returns the arrays or raises `ScalejaxError`, never
anything else, and never inflates more than its limits. The reference for
what a good file holds is NumPy's own `np.load`.

`sj.load` reads through it and then validates every field against the law
(shapes, indices, loss kinds, finite draws) before building a result: a
damaged or inconsistent file is one `ScalejaxError`.
"""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import zipfile

import numpy as np
import pytest
from hostile import handled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scalejax as sj
from scalejax._npz import LIMITS, read_npz

X = np.geomspace(1e3, 1e9, 8)
LOSS = 1.7 + 400.0 * X**-0.3


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A real saved fit of the power law (a path)."""
    fit = sj.fit("power", x={"x": X}, y=LOSS)
    return sj.save(fit, tmp_path_factory.mktemp("loading") / "fit.npz")


def npy_bytes(array=None, *, header: dict | None = None, payload: bytes | None = None, version=(1, 0)) -> bytes:
    """A `.npy` member: a real array, or a hand-written header with any payload."""
    buffer = io.BytesIO()
    if header is None:
        np.lib.format.write_array(buffer, np.asarray(array), version=version, allow_pickle=True)
        return buffer.getvalue()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + (payload or b"")


def zip_of(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def header_member(obj) -> bytes:
    return npy_bytes(np.array(obj if isinstance(obj, str) else json.dumps(obj)))


# ----------------------------------------------------------------------------- a good file


def test_a_saved_result_reads_back_as_numpy_reads_it(good):
    header, arrays = read_npz(good)
    with np.load(good, allow_pickle=False) as npz:
        reference = {k: npz[k] for k in npz.files}
    assert header == json.loads(str(reference.pop("header")))
    assert arrays.keys() == reference.keys()
    for name, value in reference.items():
        np.testing.assert_array_equal(arrays[name], value)
        assert arrays[name].dtype == value.dtype and arrays[name].flags.writeable


def test_a_result_read_from_a_pipe_reads_like_the_file(good, tmp_path):
    fifo = tmp_path / "result.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(good.read_bytes()), daemon=True)
    writer.start()
    header, arrays = read_npz(fifo)
    writer.join(10)
    assert header == read_npz(good)[0]
    np.testing.assert_array_equal(arrays["solution.u"], read_npz(good)[1]["solution.u"])
    handled("loading: result from a pipe")


def test_fortran_ordered_and_empty_arrays_keep_their_layout(tmp_path):
    a = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    path = zip_of(
        tmp_path / "f.npz",
        {"header.npy": header_member({}), "a.npy": npy_bytes(a), "e.npy": npy_bytes(np.zeros((0, 3)))},
    )
    _, arrays = read_npz(path)
    np.testing.assert_array_equal(arrays["a"], a)
    assert arrays["e"].shape == (0, 3)


# ----------------------------------------------------------------------------- hostile files


def _hostile(tmp_path, good_bytes: bytes) -> dict:
    """name -> (path, fragment of the error, extra limits)."""
    cases = {}

    def file(name, data: bytes, fragment, **limits):
        path = tmp_path / f"{name.replace(' ', '_')}.npz"
        path.write_bytes(data)
        cases[name] = (path, fragment, limits)

    def archive(name, members, fragment, compression=zipfile.ZIP_STORED, **limits):
        path = zip_of(tmp_path / f"{name.replace(' ', '_')}.npz", members, compression)
        cases[name] = (path, fragment, limits)

    file("empty", b"", "the file is empty")
    file("text", b"not a zip at all", "not a zip archive")
    for share in (0.25, 0.5, 0.99):
        file(f"truncated to {share:.0%}", good_bytes[: int(len(good_bytes) * share)], "truncated")
    file("truncated by one byte", good_bytes[:-1], "truncated")
    damaged = bytearray(good_bytes)
    at = good_bytes.index(b"solution.u.npy") + len("solution.u.npy") + 150  # inside the member's stored data
    damaged[at] ^= 0xFF
    file("CRC-damaged", bytes(damaged), "Bad CRC-32")

    good_header = header_member({"format": "scalejax-result"})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("u.npy", "w") as fh:
            fh.write(npy_bytes(header={"descr": "<f8", "fortran_order": False, "shape": (25_000_000,)}))
            zeros = bytes(1 << 22)
            for _ in range(50):  # 200 MB of zeros deflate to about 200 kB
                fh.write(zeros)
        z.writestr("header.npy", good_header)
    cases["zip bomb (compression ratio)"] = (tmp_path / "bomb.npz", "a zip bomb?", {})
    part = npy_bytes(np.zeros(110_000))  # 880 kB each: under the ratio check's floor, 12 of them over 10 MB
    archive(
        "members over the total size",
        {"header.npy": good_header, **{f"m{i}.npy": part for i in range(12)}},
        "inflate to more than",
        zipfile.ZIP_DEFLATED,
        max_total_bytes=10_000_000,
    )
    big = npy_bytes(np.zeros(500_000))  # 4 MB, stored
    archive(
        "member over the size limit", {"header.npy": good_header, "a.npy": big}, "inflates to", max_member_bytes=10**6
    )
    archive(
        "too many members",
        {"header.npy": good_header, **{f"m{i}.npy": npy_bytes(np.zeros(1)) for i in range(20)}},
        "21 members",
        max_members=16,
    )
    archive(
        "shape lies (1e12 doubles in 80 bytes)",
        {
            "header.npy": good_header,
            "u.npy": npy_bytes(header={"descr": "<f8", "fortran_order": False, "shape": (10**12,)}, payload=bytes(80)),
        },
        "claims shape",
    )
    archive(
        "shape lies (short payload)",
        {
            "header.npy": good_header,
            "u.npy": npy_bytes(header={"descr": "<f8", "fortran_order": False, "shape": (5, 3)}, payload=bytes(64)),
        },
        "claims shape",
    )
    objects = np.empty(2, dtype=object)
    objects[:] = [{"a": 1}, "b"]
    archive("object array (pickle)", {"header.npy": good_header, "u.npy": npy_bytes(objects)}, "object")
    records = np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")])
    archive("record array", {"header.npy": good_header, "u.npy": npy_bytes(records)}, "plain numbers and text only")
    archive("unknown member kind", {"header.npy": good_header, "evil.pkl": b"cos\nsystem\n"}, "not a .npy array")
    archive("not an .npy inside", {"header.npy": good_header, "u.npy": b"PK junk"}, "not a .npy array")
    v3 = bytearray(npy_bytes(np.zeros(3), version=(2, 0)))
    v3[6] = 3
    archive("npy format version 3", {"header.npy": good_header, "u.npy": bytes(v3)}, "format version 3.0")
    archive("bzip2 member", {"header.npy": good_header}, "unsupported compression", zipfile.ZIP_BZIP2)
    archive("no header", {"u.npy": npy_bytes(np.zeros(3))}, "no readable header")
    archive(
        "header nested 100000 deep",
        {"header.npy": header_member('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")},
        "nests",
    )
    archive("header nested 40 deep", {"header.npy": header_member({"a": json.loads("[" * 40 + "]" * 40)})}, "nests 41")
    archive("header of 2M characters", {"header.npy": header_member({"a": "x" * 2_000_000})}, "larger than")
    archive("header not JSON", {"header.npy": header_member("{'format': 1}")}, "not valid JSON")
    archive("header a JSON list", {"header.npy": header_member([1, 2])}, "not a JSON object")
    archive("header of numbers", {"header.npy": npy_bytes(np.zeros(3))}, "not one text value")
    archive(
        "header with a 10000-digit integer",
        {"header.npy": header_member('{"a": ' + "9" * 10_000 + "}")},
        "not valid JSON",
    )

    with zipfile.ZipFile(tmp_path / "dup.npz", "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("header.npy", good_header)
        z.writestr("u.npy", npy_bytes(np.zeros(2)))
        z.writestr("u.npy", npy_bytes(np.ones(2)))
    cases["duplicate member"] = (tmp_path / "dup.npz", "appears twice", {})

    plain = zip_of(tmp_path / "plain.npz", {"header.npy": good_header, "u.npy": npy_bytes(np.zeros(2))}).read_bytes()
    flagged = bytearray(plain)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general-purpose flag of each header
        start = 0
        while (start := plain.find(signature, start)) >= 0:
            (flags,) = struct.unpack_from("<H", plain, start + offset)
            struct.pack_into("<H", flagged, start + offset, flags | 0x1)
            start += 4
    file("encrypted members", bytes(flagged), "encrypted")
    return cases


HOSTILE = [
    "empty",
    "text",
    "truncated to 25%",
    "truncated to 50%",
    "truncated to 99%",
    "truncated by one byte",
    "CRC-damaged",
    "zip bomb (compression ratio)",
    "members over the total size",
    "member over the size limit",
    "too many members",
    "shape lies (1e12 doubles in 80 bytes)",
    "shape lies (short payload)",
    "object array (pickle)",
    "record array",
    "unknown member kind",
    "not an .npy inside",
    "npy format version 3",
    "bzip2 member",
    "no header",
    "header nested 100000 deep",
    "header nested 40 deep",
    "header of 2M characters",
    "header not JSON",
    "header a JSON list",
    "header of numbers",
    "header with a 10000-digit integer",
    "duplicate member",
    "encrypted members",
]


@pytest.fixture(scope="module")
def hostile(good, tmp_path_factory):
    return _hostile(tmp_path_factory.mktemp("hostile"), good.read_bytes())


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_files_are_one_clear_error(case, hostile):
    path, fragment, limits = hostile[case]
    with pytest.raises(sj.ScalejaxError) as caught:
        read_npz(path, **limits)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert fragment in message, (fragment, message)
    handled(f"loading: {case}")


def test_every_hostile_case_is_listed(hostile):
    assert sorted(hostile) == sorted(HOSTILE)


def test_missing_paths_and_folders(tmp_path):
    with pytest.raises(sj.ScalejaxError, match="no such file"):
        read_npz(tmp_path / "missing.npz")
    with pytest.raises(sj.ScalejaxError, match="is a directory"):
        read_npz(tmp_path)
    with pytest.raises(TypeError, match="unknown limits"):
        read_npz(tmp_path / "x.npz", max_bytes=3)
    handled("loading: missing file or folder", 2)


def test_the_default_limits_hold_a_million_resample_bootstrap():
    """The defaults are generous for real results: 10^6 resamples of a 20-parameter law fit in one member."""
    assert 10**6 * 20 * 8 < LIMITS["max_member_bytes"] < LIMITS["max_total_bytes"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_is_read_or_refused_never_a_crash(data, good, tmp_path):
    raw = bytearray(good.read_bytes())
    kind = data.draw(st.sampled_from(["flip", "truncate", "zero run"]))
    if kind == "flip":
        for at in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[at] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        at, n = data.draw(st.integers(0, len(raw) - 1)), data.draw(st.integers(1, 64))
        raw[at : at + n] = bytes(len(raw[at : at + n]))
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(raw))
    try:
        header, arrays = read_npz(path)
    except sj.ScalejaxError as err:
        assert "\n" not in str(err)
    else:  # the damage missed everything that is checked (a timestamp, say): what comes back is well-formed
        assert isinstance(header, dict) and all(isinstance(a, np.ndarray) for a in arrays.values())
    handled(f"loading: random damage ({kind})")


# ----------------------------------------------------------------------------- sj.load (the lead wires it in)


@pytest.mark.parametrize("case", ["empty", "truncated to 50%", "CRC-damaged", "header nested 100000 deep"])
def test_sj_load_turns_damage_into_one_error(case, hostile):
    path, _, _ = hostile[case]
    with pytest.raises(sj.ScalejaxError):
        sj.load(path)


def _rewrite(good, tmp_path, change) -> os.PathLike:
    """A copy of the saved result with `change(header, arrays)` applied (a damaged but well-formed file)."""
    with np.load(good, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(str(arrays.pop("header")))
    change(header, arrays)
    path = tmp_path / "changed.npz"
    np.savez(path, header=np.array(json.dumps(header)), **arrays)
    return path


def _set_key(obj, key, value) -> int:
    """Set `key` to `value` wherever it occurs in nested dicts; the number of places."""
    n = 0
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                obj[k] = value
                n += 1
            else:
                n += _set_key(v, key, value)
    return n


def _draw_arrays(arrays, n_params):
    return [k for k, v in arrays.items() if v.ndim == 2 and v.shape[1] == n_params and v.dtype.kind == "f"]


def _best_minus_one(header, arrays):
    assert _set_key(header, "best", -1)


def _extra_columns(header, arrays):
    for k in _draw_arrays(arrays, len(header["law"]["params"])):
        arrays[k] = np.hstack([arrays[k], np.zeros((arrays[k].shape[0], 4))])


def _short_y(header, arrays):
    (k,) = [k for k in arrays if k.endswith("data.y")]
    arrays[k] = arrays[k][:-1]


def _unknown_loss(header, arrays):
    def visit(obj) -> int:
        if not isinstance(obj, dict):
            return 0
        n = 0
        for k, v in obj.items():
            if k == "loss" and isinstance(v, dict) and "kind" in v:
                v["kind"] = "huber2"
                n += 1
            else:
                n += visit(v)
        return n

    assert visit(header)


def _nan_draws(header, arrays):
    for k in _draw_arrays(arrays, len(header["law"]["params"])):
        arrays[k] = np.full_like(arrays[k], np.nan)


@pytest.mark.parametrize(
    "change",
    [_best_minus_one, _extra_columns, _short_y, _unknown_loss, _nan_draws],
    ids=["best=-1", "u with 7 columns", "y shorter than x", "unknown loss kind", "all-NaN draws"],
)
def test_sj_load_refuses_inconsistent_files(change, good, tmp_path):
    with pytest.raises(sj.ScalejaxError):
        sj.load(_rewrite(good, tmp_path, change))
