"""Alembic environment: async engines for both SQLite and PostgreSQL, URLs normalised like the app's."""

import asyncio

from alembic import context
from sqlalchemy import Column, pool
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from api.db import async_url
from api.settings import database_url
from models.base import UTCDateTime

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_, obj, autogen_context):
    # Migrations spell our UTC type as the plain column type it stores, so they never import app code.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def compare_type(context, inspected_column, metadata_column, inspected_type, metadata_type):
    if isinstance(metadata_type, UTCDateTime):
        return context.impl.compare_type(inspected_column, Column(metadata_column.name, metadata_type.impl))
    return None


def configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=render_item,
        compare_type=compare_type,
        render_as_batch=True,  # SQLite alters tables by copying them
        **kwargs,
    )


def run_sync(connection) -> None:
    configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async(url) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run_sync)
    await engine.dispose()


url = async_url(config.get_main_option("sqlalchemy.url") or database_url())
if context.is_offline_mode():
    configure(url=url.set(drivername=url.get_backend_name()), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async(url))
