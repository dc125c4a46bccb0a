"""Persistence: SQLAlchemy 2 models, Alembic migrations, the event stream and quarantine repositories.

May import: stackwatch.config and stackwatch.events.model (plain data classes); nothing higher.
"""
