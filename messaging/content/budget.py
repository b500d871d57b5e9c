"""The work one message's render may do: a `for` tag that counts, and a cap on output.

Template source is bounded (rendering.MAX_SOURCE_BYTES), so without loops a render does at
most a few node renders per source byte. Loops multiply that: three nested loops over
500-character strings are 125 million iterations. This library replaces Django's `for`
tag in the message engine (see rendering.engine) with one that charges each loop, before it
runs, `items × nodes in its body` steps against a budget shared by every part of one
message, and counts the characters its iterations produce. Past either limit, or past a
wall-clock backstop checked between iterations (no signals: workers run in threads), the
render stops with TooMuchWork, which rendering.render_parts turns into a clear error naming
the part. The cost per render is one attribute lookup per loop and a few integer
operations per iteration.
"""

import time

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import Library, Node, TemplateSyntaxError, defaulttags
from django.template.defaulttags import ForNode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

register = Library()


class TooMuchWork(Exception):
    """Raised inside a render; rendering.render_parts names the part and the limit."""


_limits: tuple[int, int, float] | None = None  # read once: a settings lookup is slower than a render step


def limits() -> tuple[int, int, float]:
    """(steps, output characters, seconds) from settings."""
    global _limits
    if _limits is None:
        _limits = (settings.MAILROOM_RENDER_MAX_STEPS, settings.MAILROOM_RENDER_MAX_OUTPUT, settings.MAILROOM_RENDER_MAX_SECONDS)
    return _limits


@receiver(setting_changed)
def _forget_limits(*, setting: str, **kwargs) -> None:
    global _limits
    if setting.startswith("MAILROOM_RENDER_MAX_"):
        _limits = None


class RenderBudget:
    """What is left for one message: loop steps, output characters, time."""

    __slots__ = ("deadline", "output", "steps")

    def __init__(self) -> None:
        self.steps, self.output, seconds = limits()
        self.deadline = time.monotonic() + seconds

    def spend_output(self, size: int) -> None:
        self.output -= size
        if self.output < 0:
            raise TooMuchWork("output")


BUDGET_ATTRIBUTE = "_mailroom_budget"  # on the Context; a leading underscore is out of a template's reach


def budget_of(context) -> RenderBudget:
    """The budget of the message being rendered, made by its first loop: render_parts uses
    one Context for every part of one message, so a loop-free render never pays for it."""
    budget = getattr(context, BUDGET_ATTRIBUTE, None)
    if budget is None:
        budget = RenderBudget()
        setattr(context, BUDGET_ATTRIBUTE, budget)
    return budget


class CountedForNode(ForNode):
    """Django's ForNode with the budget: the same output, loop variables and `forloop`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Every node of the body, nested ones included, costs a step per item.
        self.cost = 1 + len(self.nodelist_loop.get_nodes_by_type(Node))
        # Nested loops count their own output; the outer loop counts the rest.
        self.body = [(node, not isinstance(node, CountedForNode)) for node in self.nodelist_loop]

    def render(self, context):
        budget = budget_of(context)
        parentloop = context.get("forloop", {})
        with context.push():
            values = self.sequence.resolve(context, ignore_failures=True)
            if values is None:
                values = []
            if not hasattr(values, "__len__"):
                values = list(values)
            len_values = len(values)
            if len_values < 1:
                return self.nodelist_empty.render(context)
            budget.steps -= len_values * self.cost  # before any work: a bomb stops at once
            if budget.steps < 0:
                raise TooMuchWork("steps")
            if self.is_reversed:
                values = reversed(values)
            unpack = len(self.loopvars) > 1
            loop_dict = context["forloop"] = {"parentloop": parentloop, "length": len_values}
            output: list[str] = []
            size, deadline, clock = 0, budget.deadline, time.monotonic
            for i, item in enumerate(values):
                loop_dict["counter0"] = i
                loop_dict["counter"] = i + 1
                loop_dict["revcounter"] = len_values - i
                loop_dict["revcounter0"] = len_values - i - 1
                loop_dict["first"] = i == 0
                loop_dict["last"] = i == len_values - 1
                if unpack:
                    try:
                        len_item = len(item)
                    except TypeError:  # not an iterable
                        len_item = 1
                    if len(self.loopvars) != len_item:
                        raise ValueError(f"Need {len(self.loopvars)} values to unpack in for loop; got {len_item}. ")
                    context.update(dict(zip(self.loopvars, item, strict=True)))
                else:
                    context[self.loopvars[0]] = item
                for node, counted in self.body:
                    piece = node.render_annotated(context)
                    output.append(piece)
                    if counted:
                        size += len(piece)
                if unpack:
                    context.pop()
                if size > budget.output:  # what nested loops left, less this loop's own output
                    raise TooMuchWork("output")
                if clock() > deadline:
                    raise TooMuchWork("time")
        budget.spend_output(size)
        return mark_safe("".join(output))


@register.tag("for")
def do_for(parser, token) -> CountedForNode:
    node = defaulttags.do_for(parser, token)
    return CountedForNode(node.loopvars, node.sequence, node.is_reversed, node.nodelist_loop, node.nodelist_empty)


def _refused(parser, token):
    raise TemplateSyntaxError(_("the {%% %(tag)s %%} tag is not allowed in messages") % {"tag": token.contents.split()[0]})


# Partials calling partials multiply a template without a loop (ten levels of ten: 10^10).
# rendering.check_source refuses them with the line; the engine cannot parse them either.
register.tag("partialdef", _refused)
register.tag("partial", _refused)
