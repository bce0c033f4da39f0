"""Typed SQLAlchemy 2.0 models, the engine/session factory, and Alembic migrations."""
from models.db import connect, migrate, session_factory
from models.tables import (
    Base,
    Business,
    CrawlRun,
    Delivery,
    DigestSent,
    Review,
    ReviewVersion,
    Source,
)

__all__ = [
    "Base",
    "Business",
    "CrawlRun",
    "Delivery",
    "DigestSent",
    "Review",
    "ReviewVersion",
    "Source",
    "connect",
    "migrate",
    "session_factory",
]
