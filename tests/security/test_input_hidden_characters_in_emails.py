"""An email address with a right-to-left override (U+202E), a byte order mark (U+FEFF), a
noncharacter (U+FFFF), a zero-width space or a control character looks like another
address, or like none: refused with a clear error by the one email rule, on every path."""

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from messaging.contact_fields import normalise_email
from messaging.models import Contact, OutboxMessage

pytestmark = pytest.mark.django_db
HIDDEN = {
    "ada@exam\u202eelpmaxe.com": "U+202E",
    "\ufeffada@example.com": "U+FEFF",
    "ada@example.com\uffff": "U+FFFF",
    "ada@exa\u200bmple.com": "U+200B",
    "ada@exa\u0085mple.com": "U+0085",
    "ada@b\u00e9b\u00e9.fr\ue000": "U+E000",
}


@pytest.mark.parametrize(("address", "code_point"), HIDDEN.items())
def test_an_email_with_an_invisible_or_direction_character_is_refused_naming_it(address, code_point):
    with pytest.raises(ValidationError) as error:
        normalise_email(address)
    assert code_point in error.value.messages[0]
    assert "invisible, control or direction characters" in error.value.messages[0]


@pytest.mark.parametrize("address", HIDDEN)
def test_the_api_refuses_such_addresses_for_contacts_and_messages(admin_user, ops, address):
    client = APIClient()
    client.force_authenticate(admin_user)
    response = client.post("/api/v1/contacts/", {"email": address})
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["email"]
    client.force_authenticate(ops)
    response = client.post("/api/v1/messages/", {"to": address, "subject": "Hi", "text": "Hello"})
    assert response.status_code == 400
    assert not Contact.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_ordinary_international_addresses_are_still_accepted():
    assert normalise_email(" Ada@B\u00e9b\u00e9.FR ") == "ada@b\u00e9b\u00e9.fr"
