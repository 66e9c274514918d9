"""Writing output files: one helper that every command, `save` and `write_report` use.

A regular file is written to a temporary file in the same directory, flushed
to disk and renamed into place, so a failure leaves the target as it was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ._errors import ScalejaxError

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike, content: str | bytes, *, what: str | None = None) -> Path:
    """Write `content` to `path` atomically (temporary file beside it, fsync, rename).

    The file gets the permissions the umask gives a new file. On any failure
    the temporary file is removed, `path` is left as it was, and an `OSError`
    becomes a `ScalejaxError` naming `what` (default: the path).

    Args:
        path: the file to write.
        content: text (written as UTF-8) or bytes.
        what: how messages name the output (`"--json out.json"`).

    Returns:
        The path written.
    """
    target = Path(path)
    label = what or str(target)
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.resolve().parent)
    except OSError as err:
        raise ScalejaxError(f"{label}: cannot write there ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise ScalejaxError(f"{label}: writing failed ({err.strerror or err}); nothing was written") from None
        raise
    return target
