"""Which event properties a preset needs: what its templates' merge tags read from the
event, and what its steps and exits look up, so a developer knows what to send.

A run's message context is the event's properties at the top level, plus `event` (its
name, properties and time), the contact and site tags (messaging.content.merge_tags),
and, for an order context, `order` / `invoice` / `shipment` / `retry_url` /
`activation_url` built from the order that `order_id` names (marketing.automations.steps.context).
So `{{ cart.url }}` and `{{ event.properties.cart.url }}` both need the property `cart.url`,
`{{ order.number }}` needs `order_id`, and `{{ contact.first_name }}` needs nothing.
"""

import re
from dataclasses import dataclass, field

from django.db.models import Q

from marketing.automations.presets import Preset
from messaging.content.merge_tags import merge_tags
from messaging.models import Template

ORDER_ROOTS = frozenset({"order", "invoice", "shipment", "retry_url", "activation_url"})
BUILT_IN_ROOTS = frozenset({"contact", "forloop", "progress", "occurrence", "segment"})
DERIVED = {"appointment.when": "appointment_at"}  # steps.message_context builds it from this property
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "None", "True", "False", "as", "with", "reversed", "only"})

VARIABLE = re.compile(r"\{\{(.*?)\}\}", re.S)
TAG = re.compile(r"\{%\s*(\w+)(.*?)%\}", re.S)
QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
FILTER_NAME = re.compile(r"\|\s*\w+")
NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.\w+)*)")
FOR_TAG = re.compile(r"^\s*([\w\s,]+?)\s+in\s+(.+?)(?:\s+reversed)?\s*$", re.S)


@dataclass
class PresetProperties:
    properties: list[str] = field(default_factory=list)  # event properties to send, e.g. cart.items[].name
    needs_order: bool = False  # the templates read the order that `order_id` names
    has_event: bool = True  # False for schedule, date and segment-entry triggers


def _names(expression: str) -> list[str]:
    expression = FILTER_NAME.sub(" ", QUOTED.sub(" ", expression))
    return [name for name in NAME.findall(expression) if name not in KEYWORDS and not name[0].isdigit()]


def template_variables(source: str) -> set[str]:
    """Dotted names a Django template reads; a loop variable becomes its list's path with []
    (`{% for item in cart.items %}{{ item.name }}` → cart.items, cart.items[].name)."""
    aliases: dict[str, str] = {}
    found: list[str] = []
    for match in TAG.finditer(source):
        tag, rest = match.group(1), match.group(2)
        if tag == "for":
            loop = FOR_TAG.match(rest)
            if loop:
                sequence = _names(loop.group(2))
                found.extend(sequence)
                for alias in loop.group(1).replace(",", " ").split():
                    aliases[alias] = f"{sequence[0]}[]" if sequence else alias
        elif tag in ("if", "elif", "firstof", "cycle"):
            found.extend(_names(rest))
        elif tag == "with":
            for part in rest.split():
                alias, equals, value = part.partition("=")
                if equals:
                    found.extend(_names(value))
                    aliases[alias] = _names(value)[0] if _names(value) else alias
    for match in VARIABLE.finditer(source):
        found.extend(_names(match.group(1)))
    resolved = set()
    for name in found:
        root, dot, rest = name.partition(".")
        if root in aliases:
            name = aliases[root] + (f".{rest}" if dot else "")
        resolved.add(name)
    return resolved


def _merge_tag_roots() -> set[str]:
    return {tag.name.split(".")[0] for tag in merge_tags()}


def event_properties(names: set[str]) -> tuple[set[str], bool]:
    """(event properties, reads the order) from template variable names."""
    platform = _merge_tag_roots() | BUILT_IN_ROOTS
    properties: set[str] = set()
    needs_order = False
    for name in names:
        root = name.split(".")[0].removesuffix("[]")
        if name in DERIVED:
            properties.add(DERIVED[name])
        elif root == "event":
            if name.startswith("event.properties."):
                properties.add(name.removeprefix("event.properties."))
        elif root in ORDER_ROOTS:
            needs_order = True
        elif root not in platform:
            properties.add(name)
    # `cart.items` is implied by `cart.items[].name`: keep the most precise paths
    precise = {
        name for name in properties if not any(other.startswith(name + ".") or other.startswith(name + "[]") for other in properties)
    }
    return precise, needs_order


def template_sources(keys: set[str]) -> dict[str, list[str]]:
    """The active content of every language of each template key (one query)."""
    sources: dict[str, list[str]] = {key: [] for key in keys}
    rows = Template.objects.filter(Q(key__in=keys), active_version__isnull=False).values_list(
        "key",
        "active_version__subject",
        "active_version__preheader",
        "active_version__body",
        "active_version__text_body",
        "active_version__sms_body",
    )
    for key, *parts in rows:
        sources[key].extend(part for part in parts if part)
    return sources


def _step_properties(preset: Preset) -> set[str]:
    """Properties the steps, exits and trigger filters look up in the run's context."""
    names: set[str] = set()
    for kind, config in preset.steps:
        if config.get("once_per"):
            names.add(config["once_per"])
        until = config.get("until")
        if kind == "wait" and isinstance(until, dict) and until.get("property"):
            names.add(until["property"])
        if kind == "condition" and config.get("check") == "property" and config.get("name"):
            names.add(config["name"])
    names.update(rule["match"] for rule in preset.exit_events if rule.get("match"))
    names.update(rule.get("property", "") for rule in preset.trigger.get("filters") or [])
    return names - {""}


def presets_properties(presets: list[Preset]) -> dict[str, PresetProperties]:
    """For each preset: the event properties its templates and steps use."""
    keys = {config["template"] for preset in presets for kind, config in preset.steps if kind == "send" and config.get("template")}
    sources = template_sources(keys)
    result: dict[str, PresetProperties] = {}
    for preset in presets:
        if preset.trigger_type != "event":
            result[preset.key] = PresetProperties(has_event=False)
            continue
        names: set[str] = set()
        for kind, config in preset.steps:
            if kind == "send":
                for source in sources.get(config.get("template", ""), []):
                    names |= template_variables(source)
        properties, needs_order = event_properties(names)
        needs_order = needs_order or any(config.get("context") == "order" for kind, config in preset.steps)
        properties |= _step_properties(preset)
        if needs_order:
            properties.add("order_id")
        result[preset.key] = PresetProperties(properties=sorted(properties), needs_order=needs_order)
    return result
