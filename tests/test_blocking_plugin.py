"""The pytest plugin's ``no_blocking`` fixture and marker, run in a nested pytest (pytester)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
filterwarnings = error
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    return pytester


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_it=textwrap.dedent(source))
    # In a subprocess: an in-process run shares this process's garbage, and an object that an
    # earlier test left behind (a dead thread's SQLite connection) collected inside the inner run
    # is a ResourceWarning there, which its ``filterwarnings = error`` turns into a failure.
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:django", *args)


def test_fixture_fails_a_test_that_blocks_its_loop_with_file_and_line(
    project: pytest.Pytester,
) -> None:
    result = run(
        project,
        """
        import time

        async def test_blocks(no_blocking):
            time.sleep(0.5)  # line 4

        async def test_quick(no_blocking):
            assert no_blocking == []
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_blocks blocked its event loop 1 time(s), at worst for 0.* s (threshold 0.1 s):",
            "*Event loop blocked for 0.* s*(threshold 0.100 s) at *test_it.py:4 in test_blocks",
            "*time.sleep(0.5)  # line 4",
            "FAILED test_it.py::test_blocks*",
        ]
    )
    # The failure is the test's own (call phase), not an error in a fixture's teardown.
    assert "ERROR" not in result.stdout.str()


def test_marker_applies_with_its_threshold_and_ignores_sync_tests(
    project: pytest.Pytester,
) -> None:
    result = run(
        project,
        """
        import time
        import pytest

        pytestmark = pytest.mark.no_blocking(threshold=2)

        async def test_below_the_module_threshold():
            time.sleep(0.3)

        @pytest.mark.no_blocking(threshold=0.1)
        async def test_above_its_own_threshold():
            time.sleep(0.5)

        def test_sync_is_left_alone():
            time.sleep(0.01)
        """,
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_above_its_own_threshold blocked its event loop*"])


def test_ini_option_sets_the_default_threshold(project: pytest.Pytester) -> None:
    project.makeini(INI + "async_toolkit_blocking_threshold = 2\n")
    result = run(
        project,
        """
        import time

        async def test_below(no_blocking):
            time.sleep(0.3)
        """,
    )
    result.assert_outcomes(passed=1)


def test_a_failing_test_that_also_blocked_says_so_in_a_note(project: pytest.Pytester) -> None:
    result = run(
        project,
        """
        import time

        async def test_fails(no_blocking):
            time.sleep(0.5)
            assert 1 == 2
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*assert 1 == 2*", "*test_fails blocked its event loop 1 time(s)*"]
    )


def test_fixture_in_a_sync_test_says_what_to_do(project: pytest.Pytester) -> None:
    result = run(
        project,
        """
        import unittest
        import pytest

        def test_sync(no_blocking):
            pass

        class TestCase(unittest.IsolatedAsyncioTestCase):
            @pytest.mark.no_blocking  # unittest runs its own methods: left alone
            async def test_method(self):
                pass
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*The no_blocking fixture watches the event loop of an async test function*"]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("no_blocking(0.1)", "*@pytest.mark.no_blocking takes one keyword argument*"),
        ("no_blocking(limit=1)", "*@pytest.mark.no_blocking takes one keyword argument*"),
        ("no_blocking(threshold=0)", "*no_blocking(threshold=...) is 0; it must be a number*"),
    ],
)
def test_bad_marker_arguments_are_reported(
    project: pytest.Pytester, marker: str, message: str
) -> None:
    result = run(
        project,
        f"""
        import pytest

        @pytest.mark.{marker}
        async def test_it():
            pass
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])


def test_bad_ini_threshold_is_reported(project: pytest.Pytester) -> None:
    project.makeini(INI + "async_toolkit_blocking_threshold = soon\n")
    result = run(
        project,
        """
        async def test_it(no_blocking):
            pass
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the async_toolkit_blocking_threshold ini option is 'soon'; it must be a number*"]
    )


def test_marker_is_registered(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:django", "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.no_blocking(threshold=None): fail this async*"])


def test_plugin_imports_without_django_settings() -> None:
    # The plugin loads in every pytest run of a project that installs the package, configured
    # or not: importing it must not import the detector or touch Django's settings.
    code = (
        "import sys, django_async_toolkit.pytest_plugin\n"
        "assert 'django_async_toolkit.blocking' not in sys.modules\n"
        "assert 'django.conf' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PATH": "/usr/bin"})


NESTED_DJANGO_SETTINGS = """
SECRET_KEY = "nested"
INSTALLED_APPS = []
DATABASES = {}
ROOT_URLCONF = "slow_urls"
MIDDLEWARE = ["slow_middleware.Passthrough"]
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
"""

SLOW_IMPORT = "import time\ntime.sleep(0.5)  # a slow machine importing this module\n"


def test_first_request_imports_are_not_blocking(pytester: pytest.Pytester) -> None:
    """The first request's imports (URLconf, views, middleware) and an import in the body.

    Each module sleeps at import, as a slow machine takes long to import a project's views: the
    plugin imports the URLconf and the middleware before it watches the test body, and leaves out
    a stall inside an import; a real blocking call still fails its test.
    """
    pytester.makeini(INI + "DJANGO_SETTINGS_MODULE = nested_settings\npythonpath = .\n")
    pytester.makepyfile(
        nested_settings=NESTED_DJANGO_SETTINGS,
        slow_urls=SLOW_IMPORT
        + textwrap.dedent(
            """
            from django.http import HttpResponse
            from django.urls import path

            async def view(request):
                return HttpResponse("ok")

            urlpatterns = [path("", view)]
            """
        ),
        slow_middleware=SLOW_IMPORT
        + textwrap.dedent(
            """

            class Passthrough:
                async_capable = True
                sync_capable = False

                def __init__(self, get_response):
                    self.get_response = get_response

                async def __call__(self, request):
                    return await self.get_response(request)
            """
        ),
        slow_module=SLOW_IMPORT,
        test_it=textwrap.dedent(
            """
            import importlib
            import sys
            import time

            async def test_first_request(async_client, no_blocking):
                # Imported before the body was watched.
                assert {"slow_urls", "slow_middleware"} <= set(sys.modules)
                response = await async_client.get("/")
                assert response.status_code == 200

            async def test_an_import_in_the_body(no_blocking):
                importlib.import_module("slow_module")

            async def test_a_blocking_call(no_blocking):
                time.sleep(0.5)  # still fails
            """
        ),
    )
    # --ds: the outer run's DJANGO_SETTINGS_MODULE would win over the ini file.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ds=nested_settings")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_a_blocking_call blocked its event loop 1 time(s)*"])
