"""Settings for the toolkit's ready-made middleware (add them to your settings)."""

from __future__ import annotations

MIDDLEWARE = [
    # Shed load first, so that a rejected request costs as little as possible.
    "django_async_toolkit.middleware.ConcurrencyLimitMiddleware",
    # Then the deadline, so that it covers the middleware below and the view.
    "django_async_toolkit.middleware.TimeoutMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    # ... the rest of your middleware
]

# Answer 504 to a request still running after 10 seconds (None, the default: no deadline).
ASYNC_TOOLKIT_REQUEST_TIMEOUT = 10

# At most 200 requests in flight in each server process (None, the default: no limit) ...
ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 200
# ... a request may wait 0.1 s for a free slot (the default) ...
ASYNC_TOOLKIT_CONCURRENCY_WAIT = 0.1
# ... then gets "503 Service Unavailable" with "Retry-After: 2".
ASYNC_TOOLKIT_RETRY_AFTER = 2
