"""Timestamps are read by psycopg's compiled loader (platform_site.pg) and are the values Django's loader reads."""

import datetime as dt

import psycopg
import pytest
from django.db import connection
from psycopg.pq import Format

from platform_site import pg
from workspaces.models import Workspace

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's loaders")

TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid


def read(sql: str):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_it_reads_timestamps_with_the_compiled_loader_when_psycopg_has_one():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ, Format.TEXT)
    if pg._compiled is None:
        pytest.skip("psycopg's pure-Python implementation: Django's loader stays")
    assert loader is pg.UTCTimestamptzLoader


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("2026-03-01 12:30:05.123456+00", dt.datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=dt.UTC)),
        ("2026-03-01 12:30:05-05", dt.datetime(2026, 3, 1, 17, 30, 5, tzinfo=dt.UTC)),
        ("2026-10-25 01:30:00+05:30", dt.datetime(2026, 10, 24, 20, 0, tzinfo=dt.UTC)),
        ("0001-01-01 00:00:00+00", dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
    ],
)
def test_it_reads_the_same_aware_utc_datetimes(literal, expected):
    value = read(f"SELECT '{literal}'::timestamptz")
    assert value == expected and value.tzinfo is dt.UTC
    assert value.isoformat() == expected.isoformat()


def test_it_round_trips_a_model_datetime(owner, org, project):
    when = dt.datetime(2026, 12, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)
    workspace = Workspace.objects.create(organization=org, project=project, owner=owner, name="w", expires_at=when)
    assert Workspace.objects.values_list("expires_at", flat=True).get(pk=workspace.pk) == when
