"""Event monitor plugins, registered through the `stackwatch.monitors` entry points: amqp and null today
(panko and http are planned; a third-party package may add its own).

May import: stackwatch.events (model, catcher contract), stackwatch.config, stackwatch.masking.
"""
