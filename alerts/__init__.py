"""Where decisions go: notifiers (one module per `kind`), their registry, and the config union of their kinds."""
from typing import Annotated

from pydantic import Field

from alerts.base import (
    NOTIFIERS,
    Alert,
    DeliveryError,
    Notifier,
    SendResult,
    Topic,
    build_notifier,
    deprecations,
    notifier_config_types,
)

# Importing a notifier module registers its kind; a new notifier module adds its import here and its Config to
# NotifierConfig, so the registry is complete whenever `alerts` is imported.
from alerts.discord import DiscordConfig  # registers "discord"
from alerts.email import EmailConfig  # registers "email"
from alerts.slack import SlackConfig  # registers "slack"
from alerts.teams import TeamsConfig  # registers "teams"
from alerts.webhook import WebhookConfig  # registers "webhook"

# One config.yaml `notifiers:` entry, chosen by its `kind:`.
NotifierConfig = Annotated[
    SlackConfig | TeamsConfig | DiscordConfig | WebhookConfig | EmailConfig, Field(discriminator="kind")
]

__all__ = [
    "NOTIFIERS",
    "Alert",
    "DeliveryError",
    "DiscordConfig",
    "EmailConfig",
    "Notifier",
    "NotifierConfig",
    "SendResult",
    "SlackConfig",
    "TeamsConfig",
    "Topic",
    "WebhookConfig",
    "build_notifier",
    "deprecations",
    "notifier_config_types",
]
