"""The send path's shortcuts through the ORM, checked against Django's own ways: the
`in_batch` lookup (values passed as the column stores them) and OutboxMessage.from_db
(a row as an instance without Model.__init__)."""

import pytest
from django.db.models import Model
from django.db.models.signals import post_init
from django.utils import timezone

from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import claim_batch
from messaging.models import Contact, OutboxMessage, Suppression

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quiet_cluster(settings):
    settings.MAILROOM_KICK_CLUSTER = False


def test_in_batch_finds_what_in_finds(contact):
    other = Contact.objects.create(email="grace@example.com")
    Suppression.objects.create(address="grace@example.com", channel="email", reason="manual")
    ids = [contact.pk, other.pk, other.pk, None, 10**9]
    assert set(Contact.objects.filter(pk__in_batch=ids)) == set(Contact.objects.filter(pk__in=ids)) == {contact, other}
    addresses = ["grace@example.com", "nobody@example.com"]
    assert list(Suppression.objects.filter(address__in_batch=addresses)) == list(Suppression.objects.filter(address__in=addresses))
    # a foreign key's column, and an empty list (nothing matches, no query error)
    message = enqueue_message(channel="email", to=contact.email, contact=contact, subject="Hi", text="Hi")
    assert list(OutboxMessage.objects.filter(contact_id__in_batch=[contact.pk])) == [message]
    assert list(OutboxMessage.objects.filter(contact_id__in_batch=[])) == []
    assert list(OutboxMessage.objects.filter(contact_id__in_batch=[None])) == []


@pytest.mark.parametrize("value", [1.5, True, b"bytes", object()])
def test_in_batch_refuses_a_value_it_would_pass_unprepared(value):
    with pytest.raises(TypeError, match="ints and strs"):
        Contact.objects.filter(pk__in_batch=[1, value])


def test_a_loaded_message_is_the_instance_django_would_build(contact):
    enqueue_message(channel="email", to=contact.email, contact=contact, subject="Hi", text="Hi", headers={"X-A": "1"}, metadata={"k": 2})
    [claimed] = claim_batch(channel="email", limit=10, owner="test:1")
    row = OutboxMessage.objects.filter(pk=claimed.pk).values_list(*[f.attname for f in OutboxMessage._meta.concrete_fields]).get()
    django_built = Model.from_db.__func__(OutboxMessage, "default", None, list(row))
    columns = {k: v for k, v in vars(claimed).items() if k not in ("_state", "body_text", "body_html")}
    assert columns == {k: v for k, v in vars(django_built).items() if k != "_state"}
    # the bodies came with the claim (.with_bodies()); Django's instance reads them on access
    assert (vars(claimed)["body_text"], vars(claimed)["body_html"]) == ("Hi", "") == (django_built.body_text, django_built.body_html)
    assert (claimed._state.adding, claimed._state.db) == (False, "default")
    assert claimed.contact == contact and claimed.headers == {"X-A": "1"} and claimed.metadata == {"k": 2}
    # saved, refreshed and compared as any instance
    claimed.error = "noted"
    claimed.save(update_fields=["error"])
    claimed.refresh_from_db()
    assert claimed.error == "noted" and claimed == OutboxMessage.objects.get(pk=claimed.pk)


def test_deferred_fields_and_init_listeners_get_djangos_own_loading(contact):
    message = enqueue_message(channel="email", to=contact.email, contact=contact, subject="Hi", text="Hi")
    partial = OutboxMessage.objects.only("subject").get(pk=message.pk)
    assert partial.get_deferred_fields() >= {"metadata", "to_address"}
    assert partial.to_address == contact.email  # loaded on access, as Django does
    seen = []

    def note(sender, instance, **kwargs):
        seen.append(instance.pk)

    post_init.connect(note, sender=OutboxMessage)
    try:
        assert OutboxMessage.objects.get(pk=message.pk).pk == message.pk
    finally:
        post_init.disconnect(note, sender=OutboxMessage)
    assert seen == [message.pk]


def test_load_gives_the_instances_the_orm_iterator_gives(contact, django_assert_num_queries):
    enqueue_message(channel="email", to=contact.email, contact=contact, subject="Plain", text="Hi")
    enqueue_message(
        channel="email", to="b@example.com", subject="Rich", html="<p>Hé</p>", headers={"X-A": "1"}, metadata={"k": [1, {"n": None}]}
    )
    OutboxMessage.objects.filter(subject="Rich").update(is_marketing=True, sent_at=timezone.now(), error="{}")
    queryset = OutboxMessage.objects.order_by("id").with_bodies()
    with django_assert_num_queries(1):
        loaded = queryset.load()
    expected = list(queryset)
    assert [vars(m) | {"_state": None} for m in loaded] == [vars(m) | {"_state": None} for m in expected]
    plain, rich = loaded
    assert plain.headers == {} and plain.metadata == {} and plain.sent_at is None and plain.is_marketing is False
    assert rich.metadata == {"k": [1, {"n": None}]} and rich.is_marketing is True and rich.sent_at.tzinfo is not None
    assert rich.error == "{}"  # a text column holding "{}" stays text
    assert plain.headers is not rich.headers and plain.metadata is not plain.headers  # each its own dict
    assert queryset.filter(pk=-1).load() == []


def test_load_leaves_deferred_and_related_loading_to_the_orm(contact):
    message = enqueue_message(channel="email", to=contact.email, contact=contact, subject="Hi", text="Hi")
    [partial] = OutboxMessage.objects.only("subject").load()
    assert partial.get_deferred_fields() >= {"metadata"} and partial.subject == "Hi"
    [joined] = OutboxMessage.objects.select_related("contact").load()
    assert joined.contact == contact and joined.pk == message.pk
