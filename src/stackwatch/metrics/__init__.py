"""Metrics from Gnocchi: the capture loop per provider, the counter arithmetic, 5-min/hourly/daily rollups
per instance, host and project, their queries and retention. May import config, store and backoff; never api or cli."""
