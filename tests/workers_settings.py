"""Settings of the worker-pool child process (``tests/workers_child.py``).

``WORKERS_DATABASE_URL`` names its database (an SQLite file or a PostgreSQL database, as
``tests.settings.database_from_url`` reads them), ``WORKERS_CONN_MAX_AGE`` its ``CONN_MAX_AGE``,
``WORKERS_POOL`` its ``ASYNC_TOOLKIT_SYNC_WORKERS`` (a number, or ``none``), ``WORKERS_DB_POOL=1``
Django's own PostgreSQL connection pool.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import database_from_url

ROOT_URLCONF = "tests.workers_urls"
DATABASES = {"default": database_from_url(os.environ["WORKERS_DATABASE_URL"])}
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("WORKERS_CONN_MAX_AGE", "0"))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = os.environ.get("WORKERS_HEALTH_CHECKS") == "1"
if os.environ.get("WORKERS_DB_POOL") == "1":
    DATABASES["default"]["OPTIONS"] = {"pool": True}
_pool = os.environ.get("WORKERS_POOL", "8")
ASYNC_TOOLKIT_SYNC_WORKERS = None if _pool == "none" else int(_pool)
