"""Bounded versions of the built-in filters that allocate as much as their argument says.

Loaded after Django's own filters by the message engine (see rendering.engine), so
`{{ name|ljust:"999999999" }}` in a template pads to MAX_WIDTH characters instead of
allocating a gigabyte in a web or cluster worker, and `{{ list|join:long_text }}` cannot
multiply a string past the render budget's output cap.
"""

import re

from django.template import Library, defaultfilters
from django.template.defaultfilters import stringfilter

from messaging.content.budget import TooMuchWork, limits

register = Library()
MAX_WIDTH = 1000
_NUMBERS = re.compile(r"\d+")


def _width(arg) -> int:
    return min(int(arg), MAX_WIDTH)


@register.filter(is_safe=True)
@stringfilter
def ljust(value: str, arg) -> str:
    return value.ljust(_width(arg))


@register.filter(is_safe=True)
@stringfilter
def rjust(value: str, arg) -> str:
    return value.rjust(_width(arg))


@register.filter(is_safe=True)
@stringfilter
def center(value: str, arg) -> str:
    return value.center(_width(arg))


@register.filter(is_safe=True)
def stringformat(value, arg) -> str:
    if any(int(number) > MAX_WIDTH for number in _NUMBERS.findall(str(arg))):
        return ""  # what Django's filter answers for a format it cannot apply
    return defaultfilters.stringformat(value, arg)


@register.filter(is_safe=True)
def floatformat(text, arg=-1):
    if any(int(number) > MAX_WIDTH for number in _NUMBERS.findall(str(arg))):
        arg = MAX_WIDTH if not str(arg).startswith("-") else -MAX_WIDTH
    return defaultfilters.floatformat(text, arg)


@register.filter(is_safe=True, needs_autoescape=True)
def join(value, arg, autoescape=True):
    if isinstance(value, (list, tuple, str)) and len(str(arg)) * (len(value) - 1) > limits()[1]:
        raise TooMuchWork("output")
    return defaultfilters.join(value, arg, autoescape=autoescape)
