"""Sphinx configuration: furo theme, built with warnings as errors (tox -e docs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

import django_async_toolkit  # noqa: E402

project = "django-async-toolkit"
author = "django-async-toolkit contributors"
copyright = "2026, django-async-toolkit contributors"
release = django_async_toolkit.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "django-async-toolkit"
html_static_path: list[str] = []
