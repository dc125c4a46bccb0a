"""stackwatch: agentless, event-driven management engine for OpenStack clouds.

Layers (a lower one never imports a higher one): store <- events <- switchboard <- inventory/push <- api/cli.
"""

__version__ = "0.1.0"
