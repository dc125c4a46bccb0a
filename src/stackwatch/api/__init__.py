"""REST API (FastAPI) over the store: events, timeline, quarantine, inventory, fleece reports, health, push
subscriptions and the WebSocket event stream, and the pages for people (web timeline, offline `/docs` and `/redoc`).

May import: stackwatch.config, stackwatch.events.model, stackwatch.store, stackwatch.inventory,
stackwatch.fleece.reports, stackwatch.push.
"""
