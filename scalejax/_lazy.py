"""Names a package loads on first use (PEP 562), so importing it costs almost nothing."""

from __future__ import annotations

from importlib import import_module


def attach(package: str, names: dict[str, tuple[str, str | None]], namespace: dict):
    """`__getattr__` and `__dir__` for `package`: `names` maps each public name to `(module, attribute)`.

    The first read of a name imports `package.module` and keeps the attribute
    (or the module itself, when `attribute` is None) in `namespace`, so later
    reads are plain lookups.
    """

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = names[name]
        value = import_module(f"{package}.{module}")
        value = value if attribute is None else getattr(value, attribute)
        namespace[name] = value
        return value

    def __dir__():
        return sorted({*namespace, *names})

    return __getattr__, __dir__
