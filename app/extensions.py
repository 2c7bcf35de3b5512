"""Flask extensions, created here and initialised in `create_app`."""

from __future__ import annotations

from flask import Flask, current_app
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from redis import BlockingConnectionPool, Redis
from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic's autogenerate and migrations agree on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def insert_on_conflict(entity):
    """An INSERT that can say ON CONFLICT DO NOTHING/UPDATE, for the database in use
    (PostgreSQL in production, SQLite in development): each dialect has its own."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(entity)


migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


class RedisStore:
    """Holds the app's Redis connection: real Redis when REDIS_URL is set, otherwise an
    in-process stand-in (fakeredis with Lua, which RQ needs) shared by the web threads and the
    in-process worker."""

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        if url:
            # A pool that waits for a free connection instead of failing at its limit: a burst
            # of requests and open event streams under gevent can want many at once.
            pool = BlockingConnectionPool.from_url(url, max_connections=200, timeout=10)
            connection: Redis = Redis(connection_pool=pool)
        else:
            import fakeredis

            server = app.config.get("FAKE_REDIS_SERVER") or fakeredis.FakeServer()
            connection = fakeredis.FakeRedis(server=server)
        app.extensions["twoway.redis"] = connection

    @property
    def connection(self) -> Redis:
        return current_app.extensions["twoway.redis"]


redis_store = RedisStore()


def get_redis() -> Redis:
    """The current app's Redis connection (bytes in, bytes out, as RQ needs)."""
    return redis_store.connection
