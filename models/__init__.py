"""The ground floor: typed SQLAlchemy 2.0 tables, the engine and session factory, Alembic migrations, batched storage, and the shared vocabulary every floor uses (vocab.py, textsafe.py)."""
