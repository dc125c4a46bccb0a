"""REST API (FastAPI) over the store: events, timeline, health.

May import: any lower layer (store, events, switchboard, inventory, push, fleece).
"""
