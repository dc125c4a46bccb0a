"""stackwatch: agentless, event-driven management engine for OpenStack clouds.

Layers (a lower one never imports a higher one): store <- events <- switchboard <- inventory <- wiring <-
api/cli. Beside them: events.model (plain data every layer may use), the utilities config, logs, masking,
gctune, backoff and selfmetrics (stackwatch's own Prometheus counters) (any layer), and two parts that
stand apart: fleece/ (image inspection) and devcloud/ (a test cloud). push/ is planned and still empty.
"""

__version__ = "0.1.0"
