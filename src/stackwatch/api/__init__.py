"""REST API (FastAPI) over the store: events, timeline, quarantine, inventory, fleece reports, health, and the
pages for people (web timeline, offline `/docs` and `/redoc`).

May import: stackwatch.config, stackwatch.events.model, stackwatch.store, stackwatch.inventory,
stackwatch.fleece.reports, stackwatch.events.monitors.http_receiver and stackwatch.events.panko_convert (the
Ceilometer push receiver).
"""
