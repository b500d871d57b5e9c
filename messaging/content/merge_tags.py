"""Merge tags: the variables a template may use, documented for the editor.

Higher apps add their own (referral link, loyalty balance…) with `register_merge_tag`
from their AppConfig.ready(); this module never imports them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from messaging import site
from messaging.models import Contact

# Links that need the message id are filled in at send time.
LINK_MARKERS = {
    "unsubscribe_url": "__MAILROOM_UNSUBSCRIBE__",
    "preferences_url": "__MAILROOM_PREFERENCES__",
    "view_in_browser_url": "__MAILROOM_VIEW__",
}


@dataclass(frozen=True)
class MergeTag:
    name: str
    description: str
    sample: Any
    resolve: Callable[[Contact], Any] | None = None  # None: the caller's context provides it


_registry: dict[str, MergeTag] = {}


def register_merge_tag(name: str, *, description: str, sample: Any, resolve: Callable[[Contact], Any] | None = None) -> None:
    _registry[name] = MergeTag(name, description, sample, resolve)


def merge_tags() -> list[MergeTag]:
    return sorted(_registry.values(), key=lambda tag: tag.name)


def _set(target: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def site_context() -> dict:
    """The product's name and address, the same in every message (Settings, or the environment)."""
    current = site.current()
    return {"site_name": current.site_name, "site_url": current.site_url}


def contact_context(contact: Contact | None, *, uses: Callable[[str], bool] | None = None) -> dict:
    """Everything the registry knows about one contact, as plain data.

    Registered tags with a resolver (a loyalty balance, a referral link) may cost a query
    each, so a send passes `uses` — does this template mention the tag? — and only those
    are resolved. Without it (previews, the editor) every tag is. A contact not saved yet
    has no related rows, so its resolvers are skipped."""
    context: dict = dict(LINK_MARKERS) | site_context()
    if contact is None:
        return context
    context["contact"] = {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "full_name": contact.full_name,
        "email": contact.email or "",
        "phone": contact.phone or "",
        "locale": contact.locale,
        "timezone": contact.timezone,
        "attributes": dict(contact.attributes),
    }
    if contact.pk is None:
        return context
    for tag in _registry.values():
        if tag.resolve is not None and (uses is None or uses(tag.name)):
            _set(context, tag.name, tag.resolve(contact))
    return context


def sample_context(contact: Contact | None = None) -> dict:
    """For previews: every tag's sample value, overlaid with a real contact's values."""
    context: dict = {}
    for tag in _registry.values():
        _set(context, tag.name, tag.sample)
    real = {key: value for key, value in contact_context(contact).items() if key not in LINK_MARKERS}
    for key, value in real.items():
        if isinstance(value, dict) and isinstance(context.get(key), dict):
            context[key] = {**context[key], **value}
        else:
            context[key] = value
    return context


for _name, _description, _sample in [
    ("contact.first_name", _("First name"), "Ada"),
    ("contact.last_name", _("Last name"), "Lovelace"),
    ("contact.full_name", _("Full name"), "Ada Lovelace"),
    ("contact.email", _("Email address"), "ada@example.com"),
    ("contact.phone", _("Phone number"), "+33612345678"),
    ("contact.locale", _("Language"), "en"),
    ("contact.timezone", _("Time zone"), "Europe/Paris"),
    ("contact.attributes", _("Custom attributes, e.g. contact.attributes.plan"), {"plan": "pro"}),
    ("unsubscribe_url", _("One-click unsubscribe link"), "https://example.com/u/sample/"),
    ("preferences_url", _("Preference center link"), "https://example.com/p/sample/"),
    ("view_in_browser_url", _("View in browser link"), "https://example.com/v/sample/"),
    ("site_name", _("The product's name (Settings → Sending)"), "Mailroom"),
    ("site_url", _("The product's address (Settings → Sending)"), "https://example.com/"),
]:
    register_merge_tag(_name, description=_description, sample=_sample)
