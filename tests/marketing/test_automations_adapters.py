"""The host-app adapter: a model's status changes become events once, with the previous status."""

import pytest
from django.db.models.signals import post_save, pre_save

from marketing.adapters import track_status_changes
from marketing.models import Event, Order
from messaging.contacts import create_contact

pytestmark = pytest.mark.django_db


def test_status_changes_become_events_once_with_the_previous_status(catalog, committed):
    ada = create_contact(actor=None, email="ada@example.com")
    # given Order (standing in for a host model) wired through the adapter
    track_status_changes(Order, prefix="shop_order", contact=lambda order: order.contact, properties=lambda o: {"order_id": o.external_id})
    try:
        with committed():
            order = Order.objects.create(contact=ada, external_id="H-1", amount=10, status="pending", placed_at="2026-03-03T10:00:00Z")
        order.status = "paid"
        with committed():
            order.save()
            order.save()  # saved again without a change
        # then one event per status, each knowing the one before
        events = list(Event.objects.order_by("id").values_list("name", "properties__previous_status"))
        assert events == [("shop_order_pending", None), ("shop_order_paid", "pending")]
    finally:
        pre_save.disconnect(sender=Order, dispatch_uid="mailroom:marketing.order:shop_order:pre")
        post_save.disconnect(sender=Order, dispatch_uid="mailroom:marketing.order:shop_order:post")
