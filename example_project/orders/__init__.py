"""The orders app: fetches orders from the upstream API, stores and lists them, sends webhooks."""

from __future__ import annotations
