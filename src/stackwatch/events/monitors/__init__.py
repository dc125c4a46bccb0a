"""Event monitor plugins, registered through the `stackwatch.monitors` entry points: amqp, ceilometer-http (push),
panko and http (polling), null; a third-party package may add its own.

May import: stackwatch.events (model, catcher contract, converters), stackwatch.config, stackwatch.masking,
stackwatch.backoff, stackwatch.store.events (the quarantine item the push receiver writes).
"""
