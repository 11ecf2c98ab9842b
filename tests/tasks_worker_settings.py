"""Settings of the processes of the Django Tasks worker tests (test_signals_tasks_worker.py).

The test settings, with the database the test made for them (``ASYNC_TOOLKIT_TASKS_TEST_DB``, a
URL): a writer process, ``manage.py db_worker`` and the test's queries all share it.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import database_from_url

DATABASES = {"default": database_from_url(os.environ["ASYNC_TOOLKIT_TASKS_TEST_DB"])}
