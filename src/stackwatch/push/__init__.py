"""Push (planned, DESIGN.md section 7): subscriptions and delivery of filtered events (webhook, WebSocket,
AMQP, Zaqar). Nothing is here yet and nothing imports this package.

May import: stackwatch.events.model, stackwatch.store, stackwatch.config.
"""
