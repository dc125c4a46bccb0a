"""Event monitor plugins (amqp, panko, http, null), registered through the `stackwatch.monitors` entry points.

May import: stackwatch.events (model, catcher contract), stackwatch.config.
"""
