"""Concurrency on PostgreSQL: racing writers never create two of what must be one."""

import pytest
from django.db import connection

from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.errors import DuplicateContact
from messaging.models import ConsentRecord, Contact, Subscription, Topic
from tests.support.race import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_suite_really_runs_on_postgresql():
    assert connection.vendor == "postgresql"


def test_racing_creates_of_one_address_make_one_contact():
    # when eight requests create the same person at the same instant
    results = race([lambda: create_contact(actor=None, email="race@example.com")] * 8)
    # then one wins and every other gets a clear duplicate error
    assert Contact.objects.filter(email="race@example.com").count() == 1
    assert sum(isinstance(r, Contact) for r in results) == 1
    assert all(isinstance(r, DuplicateContact) for r in results if not isinstance(r, Contact))


def test_racing_subscribes_write_one_subscription_and_one_consent_record():
    contact = create_contact(actor=None, email="sub@example.com")
    topic = Topic.objects.create(key="news", name="News")
    results = race([lambda: subscribe(actor=None, contact=contact, topic=topic)] * 8)
    assert not [r for r in results if isinstance(r, Exception)]
    assert Subscription.objects.filter(contact=contact, topic=topic).count() == 1
    assert ConsentRecord.objects.filter(contact=contact, topic=topic).count() == 1
