"""Rule actions (webhook, refresh, fleece, log), each a plugin of the `stackwatch.actions` entry-point group:
it validates its options, plans the delivery an event asks for, and sends it from the dispatcher.

May import: stackwatch.switchboard, stackwatch.push, stackwatch.events.model, stackwatch.store,
stackwatch.config, stackwatch.masking, stackwatch.fleece, stackwatch.inventory.
"""
