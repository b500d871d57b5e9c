"""Turning a rule tree into one queryset of contacts.

The tree is plain JSON, stored on the segment and posted by the builder:

    {"type": "group", "op": "and", "rules": [
        {"type": "rule", "field": "attribute", "key": "lifecycle_stage", "operator": "equals", "value": "customer"},
        {"type": "group", "op": "or", "rules": [...]}]}

Every mistake is reported with the rule's position ("rule 2.1") so a person can find it.
"""

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from marketing.segments.fields.registry import NO_VALUE_OPERATORS, OPERATOR_LABELS, Rule, RuleValueError, get_segment_field
from messaging.errors import InvalidInput
from messaging.models import Contact

MAX_DEPTH = 4
MAX_RULES = 60
RULE_KEYS = ("field", "operator", "value", "key", "channel", "days")


class SegmentRuleError(InvalidInput):
    code = "invalid_segment_rule"

    def __init__(self, message: str, *, position: str = ""):
        super().__init__(message, fields={f"rules.{position}" if position else "rules": [message]})
        self.position = position


def _rule_error(position: str, message: str) -> SegmentRuleError:
    return SegmentRuleError(_("Rule %(position)s: %(message)s") % {"position": position, "message": message}, position=position)


class _Compiler:
    def __init__(self):
        self.rule_count = 0

    def group(self, node, position: str, depth: int) -> Q:
        if not isinstance(node, dict) or node.get("type", "group") != "group":
            raise _rule_error(position or "1", _("a group was expected."))
        if depth > MAX_DEPTH:
            raise _rule_error(position, _("groups can be nested at most %(depth)s deep.") % {"depth": MAX_DEPTH})
        op = node.get("op", "and")
        if op not in ("and", "or"):
            raise _rule_error(position or "1", _("a group combines its rules with “and” or “or”, not “%(op)s”.") % {"op": op})
        children = node.get("rules", [])
        if not isinstance(children, list):
            raise _rule_error(position or "1", _("a group's rules must be a list."))
        combined = Q()
        for index, child in enumerate(children, start=1):
            child_position = f"{position}.{index}" if position else str(index)
            if isinstance(child, dict) and child.get("type") == "group":
                q = self.group(child, child_position, depth + 1)
            else:
                q = self.rule(child, child_position)
            combined = (combined & q) if op == "and" else (combined | q)
        return combined

    def rule(self, node, position: str) -> Q:
        self.rule_count += 1
        if self.rule_count > MAX_RULES:
            raise _rule_error(position, _("a segment has at most %(max)s rules.") % {"max": MAX_RULES})
        if not isinstance(node, dict):
            raise _rule_error(position, _("a rule was expected."))
        values = {name: node.get(name, "") for name in RULE_KEYS}
        if any(not isinstance(value, (str, int, float)) for value in values.values()):
            raise _rule_error(position, _("rule values must be text or numbers."))
        rule = Rule(**{name: str(value) for name, value in values.items()})
        field = get_segment_field(rule.field)
        if field is None:
            raise _rule_error(position, _("unknown field “%(field)s”.") % {"field": rule.field})
        if rule.operator not in field.operators:
            raise _rule_error(
                position,
                _("“%(operator)s” does not apply to %(field)s; use one of: %(allowed)s.")
                % {
                    "operator": rule.operator,
                    "field": field.label,
                    "allowed": ", ".join(str(OPERATOR_LABELS.get(op, op)) for op in field.operators),
                },
            )
        if "key" in field.needs and not rule.key.strip():
            raise _rule_error(position, _("%(field)s needs a %(what)s.") % {"field": field.label, "what": field.key_label})
        if rule.operator not in NO_VALUE_OPERATORS and not rule.value.strip():
            raise _rule_error(
                position,
                _("%(field)s %(operator)s needs a value.")
                % {"field": field.label, "operator": OPERATOR_LABELS.get(rule.operator, rule.operator)},
            )
        try:
            return field.build(rule)
        except RuleValueError as error:
            raise _rule_error(position, str(error)) from None


def compile_rules(tree) -> Q:
    """The Q over contacts the tree describes; raises SegmentRuleError naming the rule."""
    return _Compiler().group(tree, "", 1)


def contacts_matching(tree) -> QuerySet[Contact]:
    """Live contacts (not deleted or erased) matching the rule tree."""
    return Contact.objects.filter(deleted_at__isnull=True, erased_at__isnull=True).filter(compile_rules(tree))
