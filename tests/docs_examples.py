"""Importing the docs' runnable examples (``docs/examples/*.py``) in the tests that run them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def load_example(name: str, *, shared: bool = False) -> ModuleType:
    """Execute ``docs/examples/<name>.py`` as the module ``docs_examples_<name>``.

    Each call runs the file afresh (so its signal receivers connect again), unless ``shared``:
    then the module is put in ``sys.modules`` once, so that settings such as ``MIDDLEWARE`` can
    name its classes by dotted path, and later calls return that same module.
    The caller keeps the module referenced for as long as it needs what the module connected:
    receivers are connected weakly.
    """
    module_name = f"docs_examples_{name}"
    if shared and module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if shared:
        sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
