"""Settings that turn the blocking detector on in production (add them to your settings)."""

from __future__ import annotations

MIDDLEWARE = [
    # First, so that the Server-Timing lag covers the whole stack.
    "django_async_toolkit.middleware.BlockingDetectorMiddleware",
    "django.middleware.common.CommonMiddleware",
    # ... the rest of your middleware
]

# Report stalls of the event loop longer than 100 ms (the default).
ASYNC_TOOLKIT_BLOCKING_THRESHOLD = 0.1

# Add "Server-Timing: loop-lag;dur=<ms>" to each response (visible in the browser's devtools).
ASYNC_TOOLKIT_SERVER_TIMING = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_async_toolkit.blocking": {"handlers": ["console"], "level": "WARNING"},
    },
}
