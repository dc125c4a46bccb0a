"""Push: subscriptions and delivery of filtered events (webhook, WebSocket, AMQP, Zaqar).

May import: stackwatch.events.model, stackwatch.store, stackwatch.config.
"""
