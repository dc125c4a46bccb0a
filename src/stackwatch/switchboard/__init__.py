"""Switchboard: the routing table (event type -> group, refs, refresh targets, policy) and its handlers.

May import: stackwatch.events.model, stackwatch.store, stackwatch.config.
"""
