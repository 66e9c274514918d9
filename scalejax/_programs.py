"""Compiled solvers kept on disk whole, so a later process neither traces, lowers nor compiles them.

JAX's persistent compilation cache (`_compile_cache`) saves XLA's compiling,
but every new process still traces each solver to a jaxpr and lowers it to
StableHLO before the cache can be asked: about 0.5 s of the 1.8 s that a
cached `scalejax fit` takes on 2 CPU cores. The few programs every fit
runs (start screening, distinct-optimum predictions, lane initialisation,
the lane queue, the residual Jacobian) are wrapped in `Program`: when the
store is on, the first process to call one with given inputs compiles it
ahead of time (`jit(...).lower(...).compile()`), serialises the executable
(`jax.experimental.serialize_executable`) and writes it to
`<compile cache>/programs/`; later processes load it and call it.

The key of a stored program is a digest of everything that decides the
compiled code, read without tracing:
- the function and its static arguments (law, loss, solver settings,
  mesh), as a structural token: functions by module, name, bytecode and
  closure values, modules and data classes field by field, arrays by their
  bytes. Only code from scalejax, JAX, NumPy, equinox and optax is
  accepted (a law written in a notebook or a user's module runs through
  plain `jax.jit`, as without the store), and scalejax's own source files
  are part of the key, so editing them never reuses an old program;
- the inputs' tree structure, shapes, dtypes, weak types and shardings;
- JAX's, jaxlib's, NumPy's, equinox's and optax's versions, the devices,
  `XLA_FLAGS`, JAX's configuration values and whether 64-bit types are on.

Anything the token cannot describe turns the store off for that call.
A stored program is code this process runs: the store lives inside the
compile cache's directory and follows its rules (only you should write it).
The store is on wherever scalejax turned the compilation cache on (the
`scalejax` command; `scalejax.enable_compile_cache()` in Python).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import os
import pickle
import sys
import tempfile
import types
from pathlib import Path

import jax
import numpy as np

__all__ = ["Program", "Uncacheable", "disable", "enable", "files", "token"]

# Bumped when the file layout changes: older files are then ignored.
FORMAT = 1
SUFFIX = ".program"
# Stored programs beyond this many bytes: the least recently written go first.
MAX_BYTES = 256 << 20
# Compiled programs one `Program` keeps in memory; the oldest goes first.
MAX_LOADED = 32
# Modules whose code is part of the key by version (or, for scalejax, by its source files).
_TRUSTED = ("scalejax", "jax", "jaxlib", "numpy", "equinox", "optax")
_PRIMITIVE = (type(None), bool, int, float, complex, str, bytes)

_store: Path | None = None


class Uncacheable(Exception):
    """An argument the structural token cannot describe: the call runs through plain `jax.jit`."""


def enable(path: str | os.PathLike) -> Path | None:
    """Keep compiled programs in `path` (created if missing); None when it cannot be created."""
    global _store
    target = Path(path)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    _store = target
    return target


def disable() -> None:
    """Stop reading and writing stored programs in this process."""
    global _store
    _store = None


def files(path: str | os.PathLike) -> list[Path]:
    """The stored programs in `path` (nothing else that may be there)."""
    root = Path(path)
    return [f for f in root.iterdir() if f.is_file() and f.name.endswith(SUFFIX)] if root.is_dir() else []


class Program:
    """A jitted function whose compiled code is kept in the store, keyed by its static parts and its inputs.

    `Program(jitted, name, static=(...), n_static=k)`: calls are
    `program(*static_args, *inputs)`, the first `n_static` arguments being
    static arguments of `jitted` (hashable), and `static` further values the
    function closes over (`functools.partial` of a law, say), which the key
    must cover. Without a store, or when the token cannot describe an
    argument, the call is `jitted(*args)`.
    """

    def __init__(self, jitted, name: str, *, static: tuple = (), n_static: int = 0):
        self.jitted = jitted
        self.name = name
        self.static = static
        self.n_static = n_static
        self._loaded: dict = {}
        functools.update_wrapper(self, jitted, updated=())

    def __call__(self, *args):
        if _store is None:
            return self.jitted(*args)
        static, inputs = args[: self.n_static], args[self.n_static :]
        leaves, tree = jax.tree.flatten(inputs)
        try:
            key = (static, tree, tuple(_aval(v) for v in leaves), _x64())
            compiled = self._loaded.get(key)
        except (TypeError, Uncacheable):  # an unhashable static argument or an unknown input
            return self.jitted(*args)
        if compiled is None:
            compiled, path = self._load_or_compile(args, static, tree, key)
            if path is not None:  # read from the store: its first call checks that it runs here
                try:
                    out = jax.block_until_ready(compiled(*inputs))
                except (TypeError, ValueError, jax.errors.JaxRuntimeError):
                    path.unlink(missing_ok=True)
                    self._remember(key, False)
                    if any(isinstance(v, jax.Array) and v.is_deleted() for v in leaves):
                        raise  # its donated inputs are gone: the call cannot be made again
                    return self.jitted(*args)
                self._remember(key, compiled)
                return out
            self._remember(key, compiled)
        if compiled is False:
            return self.jitted(*args)
        return compiled(*inputs)

    def _remember(self, key, compiled) -> None:
        # A bounded memory: each compiled program holds its code mapped in this process.
        if len(self._loaded) >= MAX_LOADED:
            self._loaded.pop(next(iter(self._loaded)))
        self._loaded[key] = compiled

    def _load_or_compile(self, args, static, tree, key):
        if jax.process_count() > 1:  # several hosts: every process compiles, as JAX does
            return False, None
        try:
            digest = hashlib.sha256(
                repr(
                    (FORMAT, self.name, token(self.static), token(static), str(tree), key[2], key[3], _environment())
                ).encode()
            ).hexdigest()
        except Uncacheable:
            return False, None
        path = _store / f"{self.name}-{digest[:40]}{SUFFIX}"
        compiled = _read(path)
        if compiled is not None:
            return compiled, path
        compiled = _compile_afresh(self.jitted.lower(*args))
        _write(path, compiled)
        return compiled, None


def _compile_afresh(lowered):
    """Compile without reading JAX's persistent cache.

    An executable that JAX read back from its cache does not serialise whole
    on XLA:CPU (a later process fails with "Function ... not found": the
    kernels' function library is not in it), so what the store keeps is
    always compiled here. JAX decides once per process whether its cache is
    used; that decision is set aside for this one compilation and restored.
    """
    try:
        from jax._src import compilation_cache as cc

        lock, saved = cc._cache_initialized_mutex, (cc._cache_checked, cc._cache_used)
    except (ImportError, AttributeError):  # another JAX: compile as usual (the first call's check still guards)
        return lowered.compile()
    with lock:
        cc._cache_checked, cc._cache_used = True, False
    try:
        return lowered.compile()
    finally:
        with lock:
            cc._cache_checked, cc._cache_used = saved


def _read(path: Path):
    from jax.experimental.serialize_executable import deserialize_and_load

    try:
        with open(path, "rb") as f:
            fmt, payload, in_tree, out_tree, device_ids = pickle.load(f)
        if fmt != FORMAT:
            return None
        by_id = {d.id: d for d in jax.devices()}
        devices = [by_id[i] for i in device_ids]
        return deserialize_and_load(payload, in_tree, out_tree, backend=devices[0].client, execution_devices=devices)
    except Exception:  # missing, truncated, foreign or stale: compile instead, and replace it
        return None


def _write(path: Path, compiled) -> None:
    from jax.experimental.serialize_executable import serialize

    try:
        payload, in_tree, out_tree = serialize(compiled)
        # The devices it runs on, in the order it was compiled for (one device, or a mesh's).
        device_ids = [d.id for d in jax.tree.leaves(compiled.input_shardings)[0]._device_assignment]
        blob = pickle.dumps((FORMAT, payload, in_tree, out_tree, device_ids), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an executable this backend cannot serialise: keep it in memory only
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX + ".part")
    except OSError:  # a read-only or vanished directory: the program still runs
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except OSError:  # a full disk: the program still runs
        Path(tmp).unlink(missing_ok=True)
        return
    _evict(path.parent)


def _evict(root: Path) -> None:
    try:
        stored = sorted((st.st_mtime, st.st_size, f) for f in files(root) for st in [f.stat()])
    except OSError:
        return
    total = sum(size for _, size, _ in stored)
    for _, size, f in stored:
        if total <= MAX_BYTES:
            break
        f.unlink(missing_ok=True)
        total -= size


def _x64() -> bool:
    return jax.dtypes.canonicalize_dtype(np.float64) == np.float64


def _aval(v):
    """What of an input decides the compiled code: shape, dtype, weak type and (on devices) the sharding."""
    if isinstance(v, jax.core.Tracer):  # called inside a transformation: nothing to store
        raise Uncacheable("a traced input")
    if isinstance(v, jax.Array):
        return ("array", v.shape, str(v.dtype), bool(getattr(v, "weak_type", False)), v.sharding)
    if isinstance(v, np.ndarray | np.generic):
        return ("numpy", np.shape(v), v.dtype.str)
    if isinstance(v, bool | int | float | complex):
        return ("python", type(v).__name__)
    raise Uncacheable(f"input of type {type(v).__name__}")


def token(obj, depth: int = 0):
    """A structural description of `obj` that is equal across processes exactly when the compiled code would be.

    Raises:
        Uncacheable: for objects from modules outside scalejax, JAX, NumPy,
            equinox and optax, or structures deeper than 60 levels.
    """
    if depth > 60:
        raise Uncacheable("too deep")
    d = depth + 1
    if isinstance(obj, _PRIMITIVE):
        return (type(obj).__name__, repr(obj))
    if isinstance(obj, enum.Enum):
        return ("enum", _qualified(type(obj)), obj.name)
    if isinstance(obj, np.ndarray | np.generic):
        a = np.ascontiguousarray(obj)
        return ("ndarray", a.dtype.str, a.shape, hashlib.sha256(a.tobytes()).hexdigest())
    if isinstance(obj, tuple | list):
        kind = _qualified(type(obj)) if type(obj) not in (tuple, list) else type(obj).__name__
        return (kind, tuple(token(v, d) for v in obj))
    if isinstance(obj, dict):
        return ("dict", tuple(sorted((repr(token(k, d)), token(v, d)) for k, v in obj.items())))
    if isinstance(obj, functools.partial):
        return ("partial", token(obj.func, d), token(obj.args, d), token(obj.keywords, d))
    if isinstance(obj, types.FunctionType):
        _check_module(obj.__module__)
        code = obj.__code__
        cells = tuple(token(c.cell_contents, d) for c in obj.__closure__ or ())
        return (
            "function",
            obj.__module__,
            obj.__qualname__,
            hashlib.sha256(code.co_code + repr(_code_consts(code)).encode()).hexdigest(),
            token(obj.__defaults__, d),
            token(obj.__kwdefaults__, d),
            cells,
        )
    if isinstance(obj, types.MethodType):
        return ("method", token(obj.__func__, d), token(obj.__self__, d))
    if isinstance(obj, types.BuiltinFunctionType | np.ufunc):
        _check_module(getattr(obj, "__module__", None) or "numpy")
        return ("builtin", getattr(obj, "__module__", None), getattr(obj, "__qualname__", obj.__name__))
    if isinstance(obj, type):
        _check_module(obj.__module__)
        return ("type", _qualified(obj))
    if isinstance(obj, jax.sharding.Mesh):
        return ("mesh", obj.axis_names, tuple((dev.platform, dev.id) for dev in obj.devices.flat))
    if dataclasses.is_dataclass(obj):
        _check_module(type(obj).__module__)
        return (
            "dataclass",
            _qualified(type(obj)),
            tuple((f.name, token(getattr(obj, f.name, None), d)) for f in dataclasses.fields(obj)),
        )
    raise Uncacheable(f"an object of type {_qualified(type(obj))}")


def _code_consts(code: types.CodeType):
    consts = tuple(_code_consts(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts)
    return (*consts, code.co_names, code.co_firstlineno)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_module(module: str | None) -> None:
    if not module or module.split(".")[0] not in _TRUSTED:
        raise Uncacheable(f"code from {module!r}")


@functools.cache
def _source_digest() -> str:
    """A digest of scalejax's own Python files: a program compiled from other code is never reused."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@functools.cache
def _static_environment() -> tuple:
    versions = tuple(
        (name, getattr(sys.modules[name], "__version__", "?"))
        for name in ("jax", "jaxlib", "numpy", "equinox", "optax")
        if name in sys.modules
    )
    devices = tuple((d.platform, d.device_kind, d.id, d.process_index) for d in jax.devices())
    client = jax.devices()[0].client
    return (
        _source_digest(),
        sys.version,
        versions,
        devices,
        jax.process_count(),
        getattr(client, "platform_version", ""),
        os.environ.get("XLA_FLAGS", ""),
    )


def _environment() -> tuple:
    config = tuple(
        sorted((k, repr(v)) for k, v in jax.config.values.items() if isinstance(v, _PRIMITIVE) and "cache" not in k)
    )
    return (_static_environment(), config)
