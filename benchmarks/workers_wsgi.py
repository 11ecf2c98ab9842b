"""The WSGI application gunicorn serves in the worker-pool benchmarks (Django's own)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.workers_settings")
application = get_wsgi_application()
