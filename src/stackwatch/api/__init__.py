"""REST API (FastAPI) over the store: events, timeline, quarantine, inventory, fleece reports, health, /metrics,
push subscriptions and the WebSocket event stream, authentication and project scoping (identity.py, auth/), and
the pages for people (console, VM metrics charts, offline docs).

May import: stackwatch.config, stackwatch.events.model, stackwatch.store, stackwatch.inventory,
stackwatch.fleece.reports, stackwatch.switchboard.rules (automation rules), stackwatch.switchboard.routes,
stackwatch.push (subscriptions, the stream), stackwatch.selfmetrics, stackwatch.events.monitors.http_receiver and
stackwatch.events.panko_convert (the Ceilometer push receiver), stackwatch.metrics.query; keystoneauth1 /
openstack.config (auth/).
"""
