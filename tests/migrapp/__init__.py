"""A test app with real migrations, one of them a ``RunPythonAsync`` data migration.

It is not in ``tests.settings.INSTALLED_APPS``: ``tests/test_migrations.py`` installs it with
``modify_settings`` for the tests that migrate it, and unapplies its migrations afterwards.
"""
