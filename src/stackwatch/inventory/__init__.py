"""Inventory of the cloud through openstacksdk: full refresh and targeted refresh from events.

May import: stackwatch.store, stackwatch.switchboard, stackwatch.config.
"""
