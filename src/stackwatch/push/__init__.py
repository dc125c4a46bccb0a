"""Push and delivery: signing, one webhook POST and its outcome, the persisted outbox of deliveries and the
dispatcher that sends them (used by automation rules' actions and, later, push subscriptions).

May import: stackwatch.events.model, stackwatch.store, stackwatch.config, stackwatch.backoff, stackwatch.masking.
"""
