import datetime as dt
import uuid

from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field


class Organization(SQLModel, table=True):
    __tablename__ = "organization"

    id: uuid.UUID = id_field()
    name: str = Field(max_length=200)
    created_at: dt.datetime = instant_field(default_now=True)
