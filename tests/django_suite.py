"""Run modules of Django's own test suite against the toolkit.

Django's wheel has no tests, so the test suite comes from the source distribution of the installed
Django version: ``$DJANGO_SOURCE_DIR`` when set (a directory that holds Django's ``tests/``),
otherwise a cached copy in ``.cache/django-src/<version>/`` at the repository root, which
``pip download`` fills on first use (PyPI must be reachable then).

``run_django_tests(labels, patch_module)`` runs Django's ``tests/runtests.py`` for ``labels`` in a
subprocess, with ``patch_module`` (a module importable from the repository root, e.g.
``tests.signals_patch``) imported first, so the patch can put the toolkit's code in place of
Django's before any test runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import django

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache" / "django-src"

_BOOTSTRAP = """
import importlib, os, runpy, sys
tests_dir, repo_root, patch_module = sys.argv[1:4]
sys.argv = [os.path.join(tests_dir, "runtests.py"), *sys.argv[4:]]
sys.path[:0] = [tests_dir, repo_root]
importlib.import_module(patch_module)
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def django_tests_dir() -> Path:
    """The ``tests/`` directory of the installed Django version's source distribution."""
    explicit = os.environ.get("DJANGO_SOURCE_DIR")
    if explicit:
        tests_dir = Path(explicit) / "tests"
        if not (tests_dir / "runtests.py").is_file():
            raise FileNotFoundError(f"DJANGO_SOURCE_DIR={explicit!r} has no tests/runtests.py")
        return tests_dir
    version = django.__version__
    target = CACHE_DIR / version
    tests_dir = target / "tests"
    if (tests_dir / "runtests.py").is_file():
        return tests_dir
    target.mkdir(parents=True, exist_ok=True)
    # Parallel tox environments with the same Django may fetch at the same time: each extracts
    # into a directory of its own and renames it into place; the loser discards its copy.
    with (
        tempfile.TemporaryDirectory() as download,
        tempfile.TemporaryDirectory(dir=target) as partial,
    ):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                download,
                f"django=={version}",
            ],
            check=True,
            timeout=300,
        )
        (sdist,) = Path(download).glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            prefix = archive.getnames()[0].split("/")[0] + "/"
            members = []
            for member in archive.getmembers():
                if member.name.startswith(prefix + "tests/"):
                    member.name = member.name[len(prefix) :]
                    members.append(member)
            archive.extractall(partial, members=members, filter="data")
        try:
            (Path(partial) / "tests").rename(tests_dir)
        except OSError:
            if not (tests_dir / "runtests.py").is_file():
                raise
    return tests_dir


def run_django_tests(labels: list[str], patch_module: str) -> subprocess.CompletedProcess[str]:
    """Run Django's own tests for ``labels`` with ``patch_module`` imported first."""
    tests_dir = django_tests_dir()
    env = {**os.environ, "PYTHONPATH": ""}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            str(tests_dir),
            str(REPO_ROOT),
            patch_module,
            "--settings=test_sqlite",
            "--parallel=1",
            "--verbosity=1",
            *labels,
        ],
        cwd=tests_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
