"""One line for an unexpected error, as the CLI, the daemon and the worker print it: no traceback, no secrets."""
from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from models.db import DatabaseRefused
from models.vocab import mask_secrets


def describe_error(exc: BaseException) -> str:
    """One line for an unexpected error, without secrets (database URLs lose their passwords)."""
    if isinstance(exc, DatabaseRefused):
        return mask_secrets(str(exc))
    if isinstance(exc, SQLAlchemyError):
        original = getattr(exc, "orig", None)
        detail = str(original or exc).splitlines()[0]
        if "database or disk is full" in detail or "disk I/O error" in detail:
            return "disk full: the database cannot grow (nothing half-written; free space and run again)"
        if "database is locked" in detail:
            return "database error: database is locked by another process (waited 30 s); try again"
        return f"database error: {mask_secrets(detail)}"
    # ENOSPC, EFBIG (a file-size limit), EDQUOT (a quota): the same remedy for the operator
    if isinstance(exc, OSError) and exc.errno in (28, 27, 122):
        return f"disk full: {exc.filename or ''} (nothing half-written; free space and run again)"
    return f"{type(exc).__name__}: {mask_secrets(str(exc).splitlines()[0] if str(exc) else '')}"

