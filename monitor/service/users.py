"""The team: people who work reviews (members) and manage the team (owners), their passwords and Slack ids."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.tables import User
from models.vocab import USER_ROLES

__all__ = ["Person", "UserError", "add_user", "authenticate", "link_slack", "list_users", "person", "person_for_slack",
           "remove_user", "reset_password"]

MIN_PASSWORD = 10  # characters; argon2 makes guessing slow, length makes it hopeless
MAX_PASSWORD = 1024
_NAME = re.compile(r"^[\w.@+-]{1,100}$")  # letters (any script), digits and . @ + - _: safe in a URL and a log line
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,39}$")
_hasher = PasswordHasher()
# Compared against when the user does not exist, so that a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not anybody's password")


class UserError(ValueError):
    """A team change that cannot be made as asked: nothing changed."""


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    role: str
    slack_user_id: str | None
    can_log_in: bool
    created_at: datetime
    session_epoch: int


def _person(user: User) -> Person:
    return Person(user.id, user.name, user.role, user.slack_user_id, user.password_hash is not None, user.created_at,
                  user.session_epoch or 0)


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password must be at most {MAX_PASSWORD} characters long")
    return password


def _find(session: Session, name: str) -> User:
    user = session.scalars(select(User).where(func.lower(User.name) == name.strip().lower())).first()
    if user is None:
        raise UserError(f"no user {name.strip()!r} (see `repwatch users list`)")
    return user


def add_user(sessions: sessionmaker[Session], name: str, role: str, password: str | None) -> Person:
    """A new person; without a password they cannot log in to the web inbox (Slack-only people)."""
    name = name.strip()
    if not _NAME.match(name):
        raise UserError(f"a user name is 1-100 letters, digits or . @ + - _, got {name!r}")
    if role not in USER_ROLES:
        raise UserError(f"role must be one of {', '.join(USER_ROLES)}, got {role!r}")
    hashed = _hasher.hash(check_password(password)) if password is not None else None
    with sessions.begin() as session:
        if session.scalars(select(User.id).where(func.lower(User.name) == name.lower())).first() is not None:
            raise UserError(f"user {name!r} exists already (`repwatch users reset-password {name}` changes the password)")
        user = User(name=name, role=role, password_hash=hashed)
        session.add(user)
        session.flush()
        return _person(user)


def list_users(sessions: sessionmaker[Session]) -> list[Person]:
    with sessions() as session:
        return [_person(u) for u in session.scalars(select(User).order_by(User.name))]


def remove_user(sessions: sessionmaker[Session], name: str) -> Person:
    """Remove a person (their sessions end); the audit trail keeps their name on what they did."""
    with sessions.begin() as session:
        user = _find(session, name)
        if user.role == "owner":
            owners = session.scalar(select(func.count()).select_from(User).where(User.role == "owner"))
            if owners == 1:
                raise UserError(f"{user.name} is the last owner: add another owner first")
        person = _person(user)
        session.execute(delete(User).where(User.id == user.id))
        return person


def reset_password(sessions: sessionmaker[Session], name: str, password: str) -> Person:
    """A new password; every session the person had ends."""
    hashed = _hasher.hash(check_password(password))
    with sessions.begin() as session:
        user = _find(session, name)
        user.password_hash = hashed
        user.session_epoch = (user.session_epoch or 0) + 1
        session.flush()
        return _person(user)


def link_slack(sessions: sessionmaker[Session], name: str, slack_user_id: str | None) -> Person:
    """Map a Slack user id (U…/W…, from their Slack profile: "Copy member ID") to a person; None unlinks."""
    if slack_user_id is not None and not _SLACK_ID.match(slack_user_id.strip()):
        raise UserError(f"a Slack member id looks like U0123ABCD, got {slack_user_id!r}")
    wanted = slack_user_id.strip() if slack_user_id else None
    with sessions.begin() as session:
        user = _find(session, name)
        if wanted is not None:
            holder = session.scalars(select(User).where(User.slack_user_id == wanted)).first()
            if holder is not None and holder.id != user.id:
                raise UserError(f"Slack member {wanted} is linked to {holder.name} already")
        user.slack_user_id = wanted
        session.flush()
        return _person(user)


def person_for_slack(sessions: sessionmaker[Session], slack_user_id: str) -> Person | None:
    with sessions() as session:
        user = session.scalars(select(User).where(User.slack_user_id == slack_user_id)).first()
        return _person(user) if user else None


def person(sessions: sessionmaker[Session], user_id: int) -> Person | None:
    with sessions() as session:
        user = session.get(User, user_id)
        return _person(user) if user else None


def authenticate(sessions: sessionmaker[Session], name: str, password: str) -> Person | None:
    """The person if the password is theirs, else None (the same time either way)."""
    with sessions() as session:
        user = session.scalars(select(User).where(func.lower(User.name) == name.strip().lower())).first()
        stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
        try:
            _hasher.verify(stored, password[:MAX_PASSWORD])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if user is None or not user.password_hash:
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            with sessions.begin() as rehashing:
                fresh = rehashing.get(User, user.id)
                if fresh is not None:
                    fresh.password_hash = _hasher.hash(password)
        return _person(user)
