"""Switchboard: the routing table (event type -> group, refs, refresh targets, policy), the handlers (policy
events, targeted refresh, periodic full refresh), and the stage that runs them over the stored event stream.

May import: stackwatch.events.model, stackwatch.store, stackwatch.config, stackwatch.backoff.
"""
