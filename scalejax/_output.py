"""Writing output files: the one writer behind every command, `save` and `write_report`.

What each kind of output path gets:

- a regular file, or a path that does not exist yet: the bytes go to a
  temporary file in the same directory, are flushed to disk and renamed into
  place, so a failure leaves the target as it was. A new file gets the
  permissions the umask gives; a replaced file keeps its own mode.
- a symbolic link: written through. The file it points to is replaced as
  above, in that file's own directory (so a link to another filesystem
  works), and the link stays a link.
- a character or block device, a FIFO, or standard output (`-` where a
  command allows it): written directly, streamed. A device is never
  replaced by a regular file.

Outputs written inside `output_set()` (a Markdown report and its figures
folder, a report and `--save`) are staged first and swapped in as a set at
the end: a failure while staging leaves every target as it was, and a
failure while swapping puts back what was already swapped. Temporary files
and folders are removed on any exit: an exception, Ctrl-C, and SIGTERM or
SIGHUP (turned into `Terminated` while a write is in progress, then
re-delivered so that the process still ends by the signal).
"""

from __future__ import annotations

import array
import atexit
import contextlib
import contextvars
import dataclasses
import errno
import fcntl
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from ._errors import ScalejaxError

__all__ = [
    "STDOUT",
    "Target",
    "Terminated",
    "check_target",
    "display",
    "output_set",
    "refuse_overlaps",
    "stage_folder",
    "terminate_cleanly",
    "write_atomic",
]

# The path that means standard output where a caller allows it (`--json -`).
STDOUT = "-"
# mkstemp names are prefix + 8 random characters + suffix.
_RANDOM = 8
_SUFFIX = ".tmp"
# Linux inode flags: an immutable or append-only file cannot be replaced by a rename (EPERM).
_FS_IOC_GETFLAGS = 0x80086601 if sys.maxsize > 2**32 else 0x80046601
_IMMUTABLE_OR_APPEND = 0x10 | 0x20


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived during a write; raised so that temporary files are removed first."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def display(path) -> str:
    """`path` as text any terminal or JSON can carry: bytes of a file name that are not UTF-8 shown as `\\xff`."""
    text = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclasses.dataclass(frozen=True)
class Target:
    """An output path, classified before anything is written.

    Attributes:
        given: the path as the caller gave it.
        real: where the bytes go: a symlink's final target, else `given` made absolute.
        kind: `"file"` (written atomically), `"stream"` (a device or FIFO,
            written directly) or `"stdout"`.
        what: how messages name the output (`"--json out.json"`).
    """

    given: str
    real: Path
    kind: str
    what: str


def check_target(path, *, what: str | None = None, allow_stdout: bool = False, probe: bool = False) -> Target:
    """Classify an output path and refuse one that cannot be written, before any work.

    Args:
        path: the output path.
        what: how messages name it (default: the path).
        allow_stdout: `-` means standard output.
        probe: also create and remove a temporary file beside the target, so a
            read-only directory or filesystem is found now, not after the work.

    Returns:
        The `Target`.

    Raises:
        ScalejaxError: one line naming the output and what is wrong.

    Example:
        >>> check_target("fit.json", what="--json fit.json").kind
        'file'
    """
    given = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
    label = what or display(given)
    if allow_stdout and given == STDOUT:
        return Target(given, Path(STDOUT), "stdout", label)
    if not given.strip() or "\x00" in given:
        raise ScalejaxError(f"{label}: needs a file path, got {given!r}")
    try:
        info = os.stat(given)
    except FileNotFoundError:
        info = None
    except OSError as err:
        raise ScalejaxError(f"{label}: {_why(err)}") from None
    if info is not None and not stat.S_ISDIR(info.st_mode) and _is_descriptor(given):
        # /dev/stdout, /dev/fd/N, /proc/self/fd/N name an open file of this process (a shell redirection, a
        # pipe): write into it, never rename over the path it happens to resolve to.
        return Target(given, Path(given), "stream", label)
    real = Path(os.path.realpath(given))
    if info is None:
        _check_new(real, label)
        kind = "file"
    elif stat.S_ISDIR(info.st_mode):
        raise ScalejaxError(f"{label}: is a directory; give a file name")
    elif stat.S_ISREG(info.st_mode):
        _check_replaceable(real, label)
        kind = "file"
    elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) or stat.S_ISFIFO(info.st_mode):
        real, kind = Path(given), "stream"  # opened by the name given: a link to a pipe has no path to resolve
    else:
        what_it_is = "socket" if stat.S_ISSOCK(info.st_mode) else "special file"
        raise ScalejaxError(f"{label}: is a {what_it_is}; scalejax writes regular files, devices and FIFOs")
    if kind == "file" and probe:
        _probe(real, label)
    return Target(given, real, kind, label)


_DESCRIPTOR = re.compile(r"^/(dev/(stdin|stdout|stderr|fd/\d+)|proc/(self|thread-self|\d+)/fd/\d+)$")


def _is_descriptor(path: str) -> bool:
    return bool(_DESCRIPTOR.match(os.path.abspath(path)))


def _check_new(real: Path, label: str) -> None:
    parent = real.parent
    if not parent.exists():
        raise ScalejaxError(f"{label}: directory {display(parent)} does not exist")
    if not parent.is_dir():
        raise ScalejaxError(f"{label}: {display(parent)} is a file, not a directory")
    size, name_max = len(os.fsencode(real.name)), _name_max(parent)
    if size > name_max:
        raise ScalejaxError(f"{label}: the file name is {size} bytes long; this filesystem allows {name_max}")


def _check_replaceable(real: Path, label: str) -> None:
    """Refuse a file that no rename can replace: immutable or append-only (`chattr +i`, `chattr +a`)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return  # unreadable to us: the rename reports its own failure
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
    except OSError:
        return  # a filesystem without inode flags
    finally:
        os.close(fd)
    if flags[0] & _IMMUTABLE_OR_APPEND:
        raise ScalejaxError(
            f"{label}: the file is immutable or append-only (chattr +i or +a), so it cannot be replaced; "
            "choose another path or clear the flag"
        )


def _probe(real: Path, label: str) -> None:
    try:
        fd, tmp = _mkstemp(real)
    except OSError as err:
        raise ScalejaxError(f"{label}: cannot write in {display(real.parent)} ({err.strerror or err})") from None
    os.close(fd)
    os.unlink(tmp)


def _why(err: OSError) -> str:
    reasons = {
        errno.ENAMETOOLONG: "the file name is too long for this filesystem",
        errno.ENOTDIR: "a part of the path is a file, not a directory",
        errno.ELOOP: "too many levels of symbolic links (a link loop?)",
        errno.EACCES: "permission denied on a directory of the path",
    }
    return reasons.get(err.errno, f"cannot be written ({err.strerror or err})")


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _identity(path) -> tuple:
    """What makes two paths the same file: device and inode when it exists, else the resolved path."""
    try:
        info = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return ("inode", info.st_dev, info.st_ino)


def _is_char_device(path) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def refuse_overlaps(
    inputs: Mapping[str, object], outputs: Mapping[str, object], folders: Mapping[str, object] | None = None
) -> None:
    """Refuse outputs that name an input or each other, or that lie inside a replaced folder, before any work.

    Two outputs may both be one character device (`/dev/null` twice);
    nothing else may coincide.

    Args:
        inputs: label -> input path (`{"the CSV": "runs.csv"}`); None values are skipped.
        outputs: label -> output path (`{"--json": "out.json"}`); None and `-` are skipped.
        folders: label -> a folder an output replaces as a whole (a Markdown report's figures).

    Raises:
        ScalejaxError: naming the two paths that coincide.
    """
    ins = {k: v for k, v in inputs.items() if v is not None}
    outs = {k: v for k, v in outputs.items() if v is not None and os.fspath(v) != STDOUT}
    seen: dict[tuple, str] = {}
    for label, path in ins.items():
        seen.setdefault(_identity(path), label)
    for label, path in outs.items():
        key = _identity(path)
        other = seen.get(key)
        if other in ins:
            raise ScalejaxError(
                f"{label} {display(path)} is {other} {display(ins[other])}: writing it would destroy the input; "
                "choose another output path"
            )
        if other is not None and not _is_char_device(path):
            raise ScalejaxError(
                f"{label} {display(path)} and {other} {display(outs[other])} are the same file, so one would "
                "overwrite the other; give each output its own path"
            )
        seen.setdefault(key, label)
    for folder_label, folder in (folders or {}).items():
        root = os.path.realpath(folder)
        for label, path in {**ins, **outs}.items():
            inside = os.path.realpath(path)
            if inside == root or inside.startswith(root.rstrip(os.sep) + os.sep):
                raise ScalejaxError(
                    f"{label} {display(path)} lies inside {folder_label} {display(folder)}, which the report "
                    "replaces as a whole; put it elsewhere"
                )


# ----------------------------------------------------------------------------------------------- signals


def _raise_terminated(signum, frame):
    raise Terminated(signum)


_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def terminate_cleanly(*, redeliver: bool = True) -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise `Terminated`, so that `finally` blocks remove temporary files.

    Only signals still at their default handler are taken over, and only in
    the main thread: a program's own handlers are left alone. With
    `redeliver`, a `Terminated` leaving the block restores the default
    handler and sends the signal again, so the process ends by the signal,
    as it would have without scalejax.

    Args:
        redeliver: re-send the signal after the cleanup (what a library call
            does); the command passes False and exits with 128 + the signal.
    """
    installed = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _SIGNALS:
            with contextlib.suppress(ValueError, OSError):
                if signal.getsignal(sig) is signal.SIG_DFL:
                    installed[sig] = signal.signal(sig, _raise_terminated)
    try:
        yield
    except Terminated as stop:
        if redeliver and stop.signum in installed:
            for sig, old in installed.items():
                signal.signal(sig, old)
            installed.clear()
            os.kill(os.getpid(), stop.signum)
        raise
    finally:
        for sig, old in installed.items():
            signal.signal(sig, old)


# Temporary paths not yet renamed into place or removed; whatever is left is removed at interpreter exit.
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()


def _track(path: str) -> None:
    with _LIVE_LOCK:
        _LIVE.add(path)


def _untrack(path: str) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(path)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    _untrack(path)


@atexit.register
def _remove_leftovers() -> None:
    for path in list(_LIVE):
        _remove(path)


# ----------------------------------------------------------------------------------------------- writing


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (another thread may be creating files)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _beside(real: Path, tail_room: int) -> bytes:
    """`real`'s name, cut (at a UTF-8 character boundary) so that a dot, it and `tail_room` bytes fit one name."""
    stem = os.fsencode(real.name)[: max(_name_max(real.parent) - 1 - tail_room, 0)]
    while stem and (stem[-1] & 0xC0) == 0x80:
        stem = stem[:-1]
    return b"." + stem


def _mkstemp(real: Path) -> tuple[int, str]:
    """A temporary file beside `real`; its name stays within the limit even for a legal 250-byte name."""
    prefix = _beside(real, 1 + _RANDOM + len(_SUFFIX)) + b"."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=_SUFFIX.encode(), dir=os.fsencode(real.parent))
    return fd, os.fsdecode(tmp)


def _mkdtemp(real: Path) -> str:
    prefix = _beside(real, 1 + _RANDOM + len(_SUFFIX)) + b"."
    return os.fsdecode(tempfile.mkdtemp(prefix=prefix, suffix=_SUFFIX.encode(), dir=os.fsencode(real.parent)))


def _aside(real: Path) -> str:
    """A free name beside `real` under which its old version waits until a whole set is in place."""
    tail = f".{secrets.token_hex(4)}.old{_SUFFIX}".encode()
    return os.fsdecode(os.path.join(os.fsencode(real.parent), _beside(real, len(tail)) + tail))


def _fsync_dir(directory) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _mode_for(real: Path, *, directory: bool = False) -> int:
    """A replaced file keeps its mode; a new one gets what the umask gives (0666 or 0777 less the umask)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(real).st_mode)
    return (0o777 if directory else 0o666) & ~_umask()


def _failed(label: str, err: OSError) -> ScalejaxError:
    return ScalejaxError(f"{label}: writing failed ({err.strerror or err}); nothing was written")


class _Set:
    """Outputs staged in temporary files and folders, swapped into place together by `commit`."""

    def __init__(self):
        self.files: list[tuple[str, Path, str]] = []  # (temporary file, target, label)
        self.folders: list[tuple[str, Path, str]] = []  # (temporary folder, target, label)
        self.streams: list[tuple[Target, bytes]] = []
        self.old: list[str] = []  # earlier versions, kept until the whole set is in place

    def stage_file(self, target: Target, data: bytes) -> None:
        try:
            fd, tmp = _mkstemp(target.real)
        except OSError as err:
            raise ScalejaxError(
                f"{target.what}: cannot write in {display(target.real.parent)} ({err.strerror or err})"
            ) from None
        _track(tmp)
        self.files.append((tmp, target.real, target.what))
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, _mode_for(target.real))
        except OSError as err:
            raise _failed(target.what, err) from None

    def stage_folder(self, folder: Path, label: str) -> Path:
        real = Path(os.path.realpath(folder))
        if real.exists() and not real.is_dir():
            raise ScalejaxError(f"{label}: {display(folder)} exists and is not a folder; move it away or rename it")
        try:
            tmp = _mkdtemp(real)
        except OSError as err:
            raise ScalejaxError(f"{label}: cannot write in {display(real.parent)} ({err.strerror or err})") from None
        _track(tmp)
        self.folders.append((tmp, real, label))
        return Path(tmp)

    def discard(self) -> None:
        for tmp, _, _ in self.files + self.folders:
            _remove(tmp)

    def commit(self) -> None:
        """Swap every staged output into place; on a failure, put back what was already swapped.

        POSIX cannot rename several paths at once, so the swaps run under a
        lock on their directories (two concurrent runs swap whole sets in
        turn) and each keeps the earlier version until all are done.
        """
        for tmp, real, label in self.folders:
            try:
                os.chmod(tmp, _mode_for(real, directory=True))
                for root, _, names in os.walk(tmp):
                    for name in names:
                        with open(os.path.join(root, name), "rb") as fh:
                            os.fsync(fh.fileno())
            except OSError as err:
                raise _failed(label, err) from None
        undo: list = []
        keep_old = len(self.files) + len(self.folders) > 1
        parents = sorted({str(real.parent) for _, real, _ in self.files + self.folders})
        with _locked(parents):
            try:
                for tmp, real, label in self.folders:
                    self._swap_folder(tmp, real, label, undo)
                for tmp, real, label in self.files:
                    self._swap_file(tmp, real, label, undo, keep_old)
            except BaseException:
                for step in reversed(undo):
                    with contextlib.suppress(OSError):
                        step()
                raise
            for directory in parents:
                _fsync_dir(directory)
        for old in self.old:
            with contextlib.suppress(OSError):
                if os.path.isdir(old) and not os.path.islink(old):
                    shutil.rmtree(old)
                else:
                    os.unlink(old)
        for target, data in self.streams:
            _write_stream(target, data)

    def _swap_folder(self, tmp: str, real: Path, label: str, undo: list) -> None:
        old = None
        try:
            if real.is_dir():
                old = _aside(real)
                os.rename(real, old)
                undo.append(lambda: os.rename(old, real))
            os.rename(tmp, real)
        except OSError as err:
            raise _failed(label, err) from None
        _untrack(tmp)
        undo.append(lambda: (os.rename(real, tmp), _track(tmp)))
        if old is not None:
            self.old.append(old)

    def _swap_file(self, tmp: str, real: Path, label: str, undo: list, keep_old: bool) -> None:
        existed = real.exists()
        old = None
        if keep_old and existed:
            # A hard link keeps the earlier file without copying it, so that a later failure can put it back.
            with contextlib.suppress(OSError):
                candidate = _aside(real)
                os.link(real, candidate)
                old = candidate
        try:
            os.replace(tmp, real)
        except OSError as err:
            if old is not None:
                with contextlib.suppress(OSError):
                    os.unlink(old)
            raise _failed(label, err) from None
        _untrack(tmp)
        if old is not None:
            undo.append(lambda: os.replace(old, real))
            self.old.append(old)
        elif not existed:
            undo.append(lambda: os.unlink(real))


@contextlib.contextmanager
def _locked(directories: list[str]) -> Iterator[None]:
    """Hold an exclusive lock on each directory (in sorted order, so two runs cannot deadlock)."""
    fds = []
    try:
        for directory in directories:
            try:
                fd = os.open(directory, os.O_RDONLY)
            except OSError:
                continue
            fds.append(fd)
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in fds:
            os.close(fd)  # closing releases the lock


_ACTIVE: contextvars.ContextVar[_Set | None] = contextvars.ContextVar("scalejax_output_set", default=None)


@contextlib.contextmanager
def output_set() -> Iterator[None]:
    """Stage every output written inside the block; swap them into place together when it ends.

    A block inside another joins the outer one. If the block raises or is
    interrupted (Ctrl-C, SIGTERM), every staged file and folder is removed
    and no target changes.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> boot = sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=100, seed=0)
        >>> with output_set():
        ...     sj.write_report(boot, out="report.md")  # report.md and report_files/
        ...     sj.save(boot, "boot.npz")  # all three appear together
        PosixPath('report.md')
        PosixPath('boot.npz')
    """
    if _ACTIVE.get() is not None:
        yield
        return
    batch = _Set()
    with terminate_cleanly():
        try:
            token = _ACTIVE.set(batch)
            try:
                yield
            finally:
                _ACTIVE.reset(token)
            batch.commit()
        finally:
            batch.discard()


def stage_folder(folder, *, what: str) -> Path:
    """A new temporary folder that replaces `folder` as a whole when the enclosing `output_set` ends.

    Args:
        folder: the folder to replace.
        what: how messages name it.

    Returns:
        The temporary folder to write into.
    """
    batch = _ACTIVE.get()
    if batch is None:
        raise RuntimeError("stage_folder needs an enclosing output_set()")
    return batch.stage_folder(Path(folder), what)


def _write_stream(target: Target, data: bytes) -> None:
    try:
        if target.kind == "stdout":
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        with open(target.real, "wb", buffering=0) as fh:
            view = memoryview(data)
            while view:
                view = view[fh.write(view) :]
    except BrokenPipeError:
        raise  # the reader went away: the command ends quietly
    except OSError as err:
        raise ScalejaxError(f"{target.what}: writing failed ({err.strerror or err})") from None


def write_atomic(path, content: str | bytes, *, what: str | None = None, allow_stdout: bool = False) -> Path:
    """Write `content` to `path`: atomically to a regular file, through a symlink, directly to a device or FIFO.

    Inside `output_set()` the output is staged and appears when the set
    ends; otherwise it appears before this returns. On a failure the
    temporary file is removed, `path` is left as it was, and the `OSError`
    becomes a `ScalejaxError` naming `what` (default: the path).

    Args:
        path: the output path (or a `Target` from `check_target`).
        content: text (written as UTF-8) or bytes.
        what: how messages name the output (`"--json out.json"`).
        allow_stdout: `-` means standard output.

    Returns:
        The path, as given.

    Example:
        >>> import json
        >>> write_atomic("fit.json", json.dumps({"law": "chinchilla"}))
        PosixPath('fit.json')
    """
    target = path if isinstance(path, Target) else check_target(path, what=what, allow_stdout=allow_stdout)
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    with output_set():
        batch = _ACTIVE.get()
        if target.kind == "file":
            batch.stage_file(target, data)
        else:
            batch.streams.append((target, data))
    return Path(target.given)
