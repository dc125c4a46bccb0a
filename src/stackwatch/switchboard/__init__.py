"""Switchboard: the routing table (event type -> group, refs, refresh targets, policy), the handlers, and the
stage that runs them over the stored event stream. May import: stackwatch.events.model, store, config, backoff.
"""
