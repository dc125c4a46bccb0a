"""Fleece (SmartState analysis): blockio -> container -> volume -> fs -> inspect, reading only needed blocks.

May import: nothing of stackwatch outside fleece/ except stackwatch.config (independent of the event spine).
"""
