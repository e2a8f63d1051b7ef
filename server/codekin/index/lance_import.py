"""`import lancedb` without the half of it that a local index never runs.

lancedb imports `lance_namespace`, whose package `lance_namespace_urllib3_client` builds, in its
`__init__`, the REST client of a remote namespace: about 370 methods wrapped by pydantic's
`validate_call`, over half of lancedb's import time (12.2 s -> 5.5 s on the loaded 2-core
machine; 1.2-4.3 s on a quiet one). Only its `models` submodules are used by a local table.

`import_lancedb()` registers that package unexecuted (its `__path__` set, so submodules such as
`.models` load from disk as usual); the first attribute asked of the package itself runs its
real `__init__` then, so nothing that needs the REST client loses it.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

REST_CLIENT = "lance_namespace_urllib3_client"


def import_lancedb() -> ModuleType:
    if "lancedb" not in sys.modules:
        _defer_package(REST_CLIENT)
    import lancedb

    return lancedb


def _defer_package(name: str) -> None:
    """Register package `name` without running its `__init__` until an attribute of it is used."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def run_init(attribute: str) -> object:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        del module.__dict__["__getattr__"]
        loader.exec_module(module)  # the real __init__, once: everything it re-exports is there
        return getattr(module, attribute)

    module.__dict__["__getattr__"] = run_init
    sys.modules[name] = module
