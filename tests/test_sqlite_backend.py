"""config.sqlite3: Django's SQLite backend with a cheaper datetime read-back, value for
value what Django's own gives, whatever the time zone settings."""

import datetime

import pytest
from django.db import connection
from django.db.backends.sqlite3 import base as django_sqlite  # base first: its operations module imports it
from django.utils import timezone

from messaging.models import OutboxMessage

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's backend")]

NAIVE = datetime.datetime(2026, 12, 7, 14, 5, 9, 123456)
PARIS = datetime.datetime(2026, 12, 7, 15, 5, 9, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))


def both(value):
    ours = connection.ops.convert_datetimefield_value(value, None, connection)
    djangos = django_sqlite.DatabaseWrapper.ops_class(connection).convert_datetimefield_value(value, None, connection)
    return ours, djangos


def test_the_stock_settings_use_it():
    assert connection.settings_dict["ENGINE"] == "config.sqlite3"
    assert type(connection.ops).__module__ == "config.sqlite3.base"


@pytest.mark.parametrize("value", [None, NAIVE, NAIVE.replace(tzinfo=datetime.UTC), PARIS])
def test_a_datetime_reads_back_as_django_reads_it(value):
    ours, djangos = both(value)
    assert ours == djangos and getattr(ours, "tzinfo", None) == getattr(djangos, "tzinfo", None)


def test_without_time_zone_support_it_stays_naive(settings):
    settings.USE_TZ = False
    ours, djangos = both(NAIVE)
    assert ours == djangos == NAIVE and ours.tzinfo is None


def test_a_row_reads_back_aware_in_utc(contact):
    message = OutboxMessage.objects.create(channel="email", to_address="ada@example.com", next_attempt_at=timezone.now())
    read = OutboxMessage.objects.get(pk=message.pk)
    assert read.next_attempt_at == message.next_attempt_at and read.next_attempt_at.tzinfo is datetime.UTC
    assert read.sent_at is None
