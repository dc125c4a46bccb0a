"""Metrics from Gnocchi: the capture loop per provider, the counter arithmetic, 5-min/hourly/daily rollups per
instance, host and project, their queries and retention.

May import: stackwatch.config, stackwatch.store, stackwatch.backoff, stackwatch.masking, stackwatch.inventory.
"""
