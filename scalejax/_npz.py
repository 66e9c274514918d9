"""Reading `.npz` result files that may be hostile: bounded, pickle-free, one clear error for any damage.

`np.load` trusts the file: it inflates every member it is asked for, takes
each `.npy` header's shape at its word (a 100-byte member can claim a
terabyte and `read_array` allocates it before reading), and reports damage
as `BadZipFile`, `EOFError`, `zlib.error` or `ValueError`. This reader
checks the zip directory first (member count, declared sizes, compression
ratio, encryption, duplicates) before inflating anything, parses each
`.npy` header itself (plain numeric, boolean, text and datetime dtypes only:
no objects, no structured records, so nothing can ever need pickle), reads
exactly the bytes the shape needs, lets the zip CRC check run, and bounds
the JSON header's size and nesting. Every failure is a `ScalejaxError` of
one line naming the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._errors import ScalejaxError
from ._output import display

__all__ = ["LIMITS", "Npz", "read_npz"]

# Defaults, generous for real results (a million-resample bootstrap of a 20-parameter law is 160 MB).
LIMITS = {
    "max_members": 1024,
    "max_member_bytes": 1 << 30,
    "max_total_bytes": 2 << 30,
    "max_ratio": 100.0,
    "max_header_chars": 1 << 20,
    "max_depth": 32,
}
# Members smaller than this are exempt from the compression-ratio check (a constant status array compresses well).
_RATIO_FLOOR = 1 << 20
# dtype kinds a result may hold: bool, signed and unsigned ints, floats, complex, bytes, text, datetime.
_KINDS = frozenset("biufcSUM")
_NPY_HEADER_MAX = 10_000
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


class Npz:
    """A `.npz` file opened for bounded reading; use as a context manager.

    Args:
        path: the file (a regular file, or a pipe or device read into memory up to the size cap).
        header: the member holding the JSON header (a 0-d text array), or None for none.
        max_members: most members the zip directory may list.
        max_member_bytes: most bytes one member may inflate to.
        max_total_bytes: most bytes all members together may inflate to (and the most the file may hold).
        max_ratio: most a member over 1 MiB may be compressed (inflated / stored size).
        max_header_chars: most characters of the JSON header.
        max_depth: deepest nesting of lists and objects in the JSON header.

    Attributes:
        header: the parsed JSON header (a dict), or None when `header` is None.
        names: the member names without `.npy`, in the order stored.

    Example:
        >>> import scalejax as sj
        >>> fit = sj.fit("power", x={"x": [1.0, 2.0, 4.0, 8.0, 16.0]}, y=[3.0, 2.5, 2.2, 2.05, 1.97])
        >>> path = sj.save(fit, "fit.npz")
        >>> with Npz("fit.npz") as npz:
        ...     u = npz.array("solution.u", kinds="f", ndim=2)
        >>> u.shape[1]
        3
    """

    def __init__(
        self,
        path,
        *,
        header: str | None = "header",
        max_members: int = LIMITS["max_members"],
        max_member_bytes: int = LIMITS["max_member_bytes"],
        max_total_bytes: int = LIMITS["max_total_bytes"],
        max_ratio: float = LIMITS["max_ratio"],
        max_header_chars: int = LIMITS["max_header_chars"],
        max_depth: int = LIMITS["max_depth"],
    ):
        self.path = Path(path)
        self._label = display(self.path)
        self._max_member_bytes = max_member_bytes
        self._max_header_chars = max_header_chars
        self._max_depth = max_depth
        self._zip = self._open(max_total_bytes)
        try:
            self._members = self._directory(max_members, max_member_bytes, max_total_bytes, max_ratio)
            self.names = list(self._members)
            self.header = None if header is None else self._read_header(header)
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- opening and the zip directory

    def fail(self, reason: str) -> ScalejaxError:
        """The one-line error for this file: `PATH: not a scalejax result file (REASON)`."""
        return ScalejaxError(f"{self._label}: not a scalejax result file ({reason})")

    def _open(self, max_total_bytes: int) -> zipfile.ZipFile:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise ScalejaxError(f"{self._label}: no such file") from None
        except OSError as err:
            raise ScalejaxError(f"{self._label}: cannot be read ({err.strerror or err})") from None
        if stat.S_ISDIR(info.st_mode):
            raise ScalejaxError(f"{self._label}: is a directory, not a result file")
        try:
            if stat.S_ISREG(info.st_mode):
                if info.st_size == 0:
                    raise self.fail("the file is empty")
                if info.st_size > max_total_bytes:
                    raise self.fail(f"{info.st_size} bytes, more than the {max_total_bytes} allowed")
                source = open(self.path, "rb")  # closed with the ZipFile
            else:  # a pipe or device: zip needs seeking, so read it into memory, bounded
                with open(self.path, "rb") as fh:
                    data = fh.read(max_total_bytes + 1)
                if not data:
                    raise self.fail("the file is empty")
                if len(data) > max_total_bytes:
                    raise self.fail(f"more than the {max_total_bytes} bytes allowed")
                source = io.BytesIO(data)
        except OSError as err:
            raise ScalejaxError(f"{self._label}: cannot be read ({err.strerror or err})") from None
        try:
            return zipfile.ZipFile(source)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error, IndexError) as err:
            source.close()
            raise self.fail(f"not a zip archive, or a truncated one: {_short(err)}") from None

    def _directory(self, max_members, max_member_bytes, max_total_bytes, max_ratio) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        if len(infos) > max_members:
            raise self.fail(f"{len(infos)} members, more than the {max_members} allowed")
        members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = info.filename
            if info.is_dir() or not name.endswith(".npy"):
                raise self.fail(f"member {name!r} is not a .npy array")
            key = name[: -len(".npy")]
            if key in members:
                raise self.fail(f"member {name!r} appears twice")
            if info.flag_bits & 0x1:
                raise self.fail(f"member {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self.fail(f"member {name!r} uses an unsupported compression (method {info.compress_type})")
            if info.file_size > max_member_bytes:
                raise self.fail(
                    f"member {name!r} inflates to {info.file_size} bytes, more than the {max_member_bytes} allowed"
                )
            if info.file_size > _RATIO_FLOOR and info.file_size > max_ratio * max(info.compress_size, 1):
                raise self.fail(
                    f"member {name!r} is compressed {info.file_size / max(info.compress_size, 1):.0f}:1, "
                    f"more than the {max_ratio:g}:1 allowed (a zip bomb?)"
                )
            total += info.file_size
            if total > max_total_bytes:
                raise self.fail(f"the members inflate to more than the {max_total_bytes} bytes allowed")
            members[key] = info
        return members

    # ---------------------------------------------------------------- members

    def array(self, name: str, *, kinds: str | None = None, ndim: int | None = None) -> np.ndarray:
        """Read one member as an array, checking its header before inflating its data.

        Args:
            name: the member's name without `.npy`.
            kinds: if given, the dtype kinds allowed (`"f"` floats, `"iu"` integers, `"U"` text...).
            ndim: if given, the number of dimensions required.

        Returns:
            A writable NumPy array.

        Raises:
            ScalejaxError: the member is missing, damaged, or not of the kind or dimension required.
        """
        info = self._members.get(name)
        if info is None:
            raise self.fail(f"member {name!r} is missing")
        try:
            with self._zip.open(info) as fh:
                array = self._read_npy(fh, name, info.file_size)
                if fh.read(1):
                    raise self.fail(f"member {name!r} has bytes after its array")
        except ScalejaxError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error) as err:
            raise self.fail(f"member {name!r} is damaged: {_short(err)}") from None
        if kinds is not None and array.dtype.kind not in kinds:
            raise self.fail(f"member {name!r} holds {array.dtype} values, not the kind expected")
        if ndim is not None and array.ndim != ndim:
            raise self.fail(f"member {name!r} has {array.ndim} dimensions, not {ndim}")
        return array

    def _read_npy(self, fh, name: str, size: int) -> np.ndarray:
        try:
            version = np.lib.format.read_magic(fh)
        except ValueError:
            raise self.fail(f"member {name!r} is not a .npy array") from None
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=_NPY_HEADER_MAX)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=_NPY_HEADER_MAX)
        else:
            raise self.fail(f"member {name!r} has .npy format version {version[0]}.{version[1]}, not 1.0 or 2.0")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _KINDS:
            raise self.fail(f"member {name!r} holds {dtype} values; a result holds plain numbers and text only")
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise self.fail(f"member {name!r} has an invalid shape {shape}")
        count = 1
        for n in shape:
            count *= n  # Python integers: no overflow, whatever the header claims
        nbytes = count * dtype.itemsize
        header_bytes = fh.tell()
        if nbytes != size - header_bytes:
            raise self.fail(
                f"member {name!r} claims shape {shape} of {dtype} ({nbytes} bytes) but holds {size - header_bytes}"
            )
        if nbytes > self._max_member_bytes:
            raise self.fail(f"member {name!r} holds {nbytes} bytes, more than the {self._max_member_bytes} allowed")
        buffer = bytearray(nbytes)
        view = memoryview(buffer)
        filled = 0
        while filled < nbytes:
            got = fh.readinto(view[filled:])
            if not got:
                raise self.fail(f"member {name!r} is truncated")
            filled += got
        array = np.frombuffer(buffer, dtype=dtype)
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)

    def _read_header(self, name: str) -> dict:
        info = self._members.get(name)
        if info is None:
            raise self.fail("no readable header: it was not written by scalejax.save")
        # A text header of n characters is 4n bytes of UCS-4, plus the .npy preamble.
        if info.file_size > 4 * self._max_header_chars + _NPY_HEADER_MAX:
            raise self.fail(f"the header is larger than the {self._max_header_chars} characters allowed")
        raw = self.array(name)
        if raw.dtype.kind not in "US" or raw.size != 1:
            raise self.fail("the header is not one text value")
        text = raw.reshape(()).item()
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail("the header is not UTF-8 text") from None
        if len(text) > self._max_header_chars:
            raise self.fail(f"the header is larger than the {self._max_header_chars} characters allowed")
        depth = _depth(text)
        if depth > self._max_depth:
            raise self.fail(f"the header nests {depth} levels deep, more than the {self._max_depth} allowed")
        try:
            header = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise self.fail(f"the header is not valid JSON: {_short(err)}") from None
        if not isinstance(header, dict):
            raise self.fail("the header is not a JSON object")
        return header

    # ---------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close the file."""
        with contextlib.suppress(Exception):
            fp = self._zip.fp
            self._zip.close()
            if fp is not None:
                fp.close()

    def __enter__(self) -> Npz:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_npz(path, *, header: str | None = "header", **limits) -> tuple[dict | None, dict[str, np.ndarray]]:
    """Read a whole `.npz` result file, bounded and pickle-free: its JSON header and every array.

    Args:
        path: the file.
        header: the member holding the JSON header, or None.
        **limits: any of `LIMITS` (`max_members`, `max_member_bytes`,
            `max_total_bytes`, `max_ratio`, `max_header_chars`, `max_depth`).

    Returns:
        `(header, arrays)`: the header dict (None when `header` is None) and
        the other members by name (without `.npy`).

    Raises:
        ScalejaxError: one line for a missing, empty, truncated, damaged,
            oversized or malformed file.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> boot = sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=100, seed=0)
        >>> path = sj.save(boot, "boot.npz")
        >>> header, arrays = read_npz("boot.npz")
        >>> header["format"], arrays["u"].shape
        ('scalejax-result', (100, 5))
    """
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise TypeError(f"read_npz got unknown limits {sorted(unknown)}; known: {sorted(LIMITS)}")
    with Npz(path, header=header, **limits) as npz:
        return npz.header, {name: npz.array(name) for name in npz.names if name != header}


def _depth(text: str) -> int:
    """Deepest nesting of `[` and `{` in JSON text, strings skipped (json.loads would hit the recursion limit)."""
    deepest = depth = 0
    for match in re.finditer(r"[\[\]{}]", _STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _short(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:157] + "..."
