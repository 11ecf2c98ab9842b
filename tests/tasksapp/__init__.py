"""A fixture app whose receivers run on Django Tasks (tests/test_signals_tasks*.py)."""
