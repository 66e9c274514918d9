"""Compile once per machine, not once per process: JAX's persistent compilation cache for scalejax.

Every new Python process compiles the solvers afresh (seconds on a CPU, more
than the fit itself). JAX can keep compiled executables on disk and load
them in later processes. The `scalejax` command turns this on by itself; a
library must not change JAX's set-up on import, so in Python it is opt-in:
`scalejax.enable_compile_cache()`, or `SCALEJAX_COMPILE_CACHE=1` in the
environment (read at the first fit).

Where: `$SCALEJAX_CACHE_DIR` if set, else `$XDG_CACHE_HOME/scalejax/jax`
(`~/.cache/scalejax/jax`). Entries are keyed by the computation, the JAX and
XLA versions and the device, so a stale entry is never used. With the
`filelock` package installed the directory is capped at `MAX_BYTES` (least
recently used entries go first); a fit adds a few hundred KB. Clear it with
`scalejax cache clear` or `scalejax.clear_compile_cache()`.
`SCALEJAX_COMPILE_CACHE=0` turns it off, for the command as well.

A compilation cache is trusted code: do not point it at a directory others
can write to.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import jax

from . import _programs

__all__ = [
    "ENV_DIR",
    "ENV_SWITCH",
    "MAX_BYTES",
    "cache_dir",
    "cache_info",
    "clear_compile_cache",
    "enable_compile_cache",
    "enable_from_env",
]

ENV_DIR = "SCALEJAX_CACHE_DIR"
ENV_SWITCH = "SCALEJAX_COMPILE_CACHE"
MAX_BYTES = 1 << 30
# The folder inside the cache where whole compiled solvers are kept (`_programs`).
PROGRAMS = "programs"
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_checked_env = False


def cache_dir() -> Path:
    """Where scalejax keeps compiled code: `$SCALEJAX_CACHE_DIR`, else `$XDG_CACHE_HOME/scalejax/jax`."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "scalejax" / "jax"


def enable_compile_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Keep compiled solvers on disk at `path` (default `cache_dir()`), so later processes skip compiling.

    Leaves a cache directory that JAX was already given (by the user or the
    environment) as it is. Safe to call more than once and after JAX has
    compiled something.

    Args:
        path: the directory; created if missing.

    Returns:
        The directory in use, or None when `SCALEJAX_COMPILE_CACHE=0` turns it off.

    Example:
        >>> import scalejax as sj
        >>> sj.enable_compile_cache()  # doctest: +SKIP
        PosixPath('/home/me/.cache/scalejax/jax')
    """
    if os.environ.get(ENV_SWITCH, "").strip().lower() in _OFF:
        return None
    current = jax.config.jax_compilation_cache_dir
    if current and path is None:
        _programs.enable(Path(current) / PROGRAMS)
        return Path(current)
    target = Path(path).expanduser() if path is not None else cache_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run without the cache rather than fail the fit
    if current != str(target):
        jax.config.update("jax_compilation_cache_dir", str(target))
        # Small solvers compile in a fraction of a second, but a fit compiles a dozen of them.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        if importlib.util.find_spec("filelock") is not None:  # JAX needs it to evict old entries
            jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
        # JAX decides once per process whether to use the cache: let it decide again.
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()
    _programs.enable(target / PROGRAMS)
    return target


def enable_from_env() -> None:
    """Turn the cache on when `SCALEJAX_COMPILE_CACHE` says so (checked once per process, at the first fit)."""
    global _checked_env
    if _checked_env:
        return
    _checked_env = True
    if os.environ.get(ENV_SWITCH, "").strip().lower() in _ON:
        enable_compile_cache()


def cache_info(path: str | os.PathLike | None = None) -> dict:
    """`{"path", "entries", "programs", "bytes"}` of the cache directory.

    `entries` are XLA executables JAX stored, `programs` whole solvers
    scalejax stored (traced, lowered and compiled: see `_programs`), `bytes`
    everything in the directory.
    """
    root = Path(path).expanduser() if path is not None else _current_dir()
    files = [f for f in root.rglob("*") if f.is_file()] if root.is_dir() else []
    return {
        "path": str(root),
        "entries": sum(1 for f in files if f.name.endswith("-cache")),
        "programs": len(_programs.files(root / PROGRAMS)),
        "bytes": sum(f.stat().st_size for f in files),
    }


def clear_compile_cache(path: str | os.PathLike | None = None) -> dict:
    """Delete every compiled executable in the cache directory; returns what was there (`cache_info`).

    Only files JAX and scalejax write there (`*-cache`, `*-atime`, JAX's
    autotuning folder and scalejax's stored programs) are removed, so a
    directory given by mistake loses nothing else.
    """
    root = Path(path).expanduser() if path is not None else _current_dir()
    before = cache_info(root)
    for f in _programs.files(root / PROGRAMS):
        f.unlink(missing_ok=True)
    if root.is_dir():
        for f in root.iterdir():
            if f.is_file() and (f.name.endswith("-cache") or f.name.endswith("-atime")):
                f.unlink(missing_ok=True)
        tuning = root / "xla_gpu_per_fusion_autotune_cache_dir"
        if tuning.is_dir():
            for f in tuning.rglob("*"):
                if f.is_file():
                    f.unlink(missing_ok=True)
    return before


def _current_dir() -> Path:
    current = jax.config.jax_compilation_cache_dir
    return Path(current) if current else cache_dir()
