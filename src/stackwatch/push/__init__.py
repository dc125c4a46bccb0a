"""Push and delivery: signing, one webhook POST and its outcome, the persisted outbox of deliveries and the
dispatcher that sends them (used by automation rules' actions and push subscriptions), and push itself:
subscriptions, their scope and filters, destinations (webhook, AMQP, Zaqar) and the `push` handler.

May import: stackwatch.events.model, stackwatch.store, stackwatch.config, stackwatch.backoff, stackwatch.masking,
stackwatch.switchboard (the handler plugin contract, the routes' glob helper).
"""
