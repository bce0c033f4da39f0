"""Where decisions go: notifiers (one module per `kind`) and their registry."""
from alerts.base import (
    NOTIFIERS,
    Alert,
    DeliveryError,
    Notifier,
    SendResult,
    build_notifier,
    notifier_config_types,
)

# Importing a notifier module registers its kind; a new notifier module adds its import here,
# so the registry (and the config union built from it) is complete whenever `alerts` is imported.
from alerts import slack  # noqa: E402,F401  (registers "slack")
from alerts import webhook  # noqa: E402,F401  (registers "webhook")

__all__ = ["NOTIFIERS", "Alert", "DeliveryError", "Notifier", "SendResult", "build_notifier", "notifier_config_types"]
