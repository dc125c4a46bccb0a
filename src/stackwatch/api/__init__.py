"""REST API (FastAPI) over the store: events, timeline, quarantine, inventory, fleece reports, metrics, health,
and the pages for people (web timeline, VM metrics, offline `/docs` and `/redoc`).

May import: stackwatch.config, stackwatch.events.model, stackwatch.store, stackwatch.inventory,
stackwatch.fleece.reports, stackwatch.metrics.query.
"""
