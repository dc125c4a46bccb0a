"""Persistence: SQLAlchemy 2 models, Alembic migrations, the event stream (writes, queries, handler positions)
and quarantine repositories.

May import: stackwatch.config, stackwatch.events.model (plain data classes), stackwatch.gctune; nothing higher.
"""
