"""Event intake: monitors (raw messages) -> convert (canonical Event) -> catcher (filter, dedup, store, ack).

May import: stackwatch.config, stackwatch.store, stackwatch.switchboard.routes (the routing table data),
stackwatch.logs, stackwatch.masking, stackwatch.gctune, stackwatch.backoff.
"""
