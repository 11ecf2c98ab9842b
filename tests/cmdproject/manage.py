#!/usr/bin/env python
"""``manage.py`` of the small project that the management tests run in real subprocesses."""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ["DJANGO_SETTINGS_MODULE"] = "cmdsettings"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
