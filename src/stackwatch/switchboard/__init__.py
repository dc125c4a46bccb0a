"""Switchboard: the routing table (event type -> group, refs, refresh targets, policy) and the handler stage
that reads the stored event stream into its handlers (policy events, targeted refresh, periodic full refresh).

May import: stackwatch.events.model, stackwatch.store, stackwatch.config, stackwatch.backoff.
"""
