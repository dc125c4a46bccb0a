"""Automation rules: the rule model and its validation, the rules file (reload, add, remove), evaluation with
throttles, the `rules` handler that enqueues actions into the delivery outbox, and the audit of matches.

May import: stackwatch.switchboard, stackwatch.push, stackwatch.events.model, stackwatch.events.convert,
stackwatch.store, stackwatch.config, stackwatch.backoff, stackwatch.masking.
"""
