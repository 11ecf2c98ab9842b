"""Read ``manage.py async_audit --json`` in a CI job: list the costliest request paths.

Usage: ``python manage.py async_audit --json | python audit_ci.py``
"""

from __future__ import annotations

import json
import sys
from typing import Any


def costliest_paths(document: dict[str, Any], interface: str = "asgi") -> list[str]:
    """One line per URL whose hops under ``interface`` are the project's maximum."""
    if document["version"] != 1:
        raise ValueError(f"unknown async_audit JSON version {document['version']!r}")
    worst = document["max_hops"][interface]
    return [
        f"/{view['route']} ({view['view']}): {view['hops'][interface]} hops"
        for view in document["views"]
        if view["hops"][interface] == worst
    ]


if __name__ == "__main__":
    for line in costliest_paths(json.load(sys.stdin)):
        print(line)
