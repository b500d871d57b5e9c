"""Compiling and rendering template versions, safely.

Template source is written by marketers, so it renders with a dedicated Django engine
against plain data only (dicts, strings, numbers): no loaders, no tag libraries, no
`include`/`extends`/`load`/`debug`, and the names that could reach server state are
refused when a version is saved. Compilation (MJML → HTML → inlined CSS → text part)
happens once per version; per recipient only the merge runs, on templates cached by
version id (versions are immutable, so the cache never goes stale).
"""

import html as html_module
import logging
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.base import DebugLexer, Lexer, Parser, TokenType, Variable, VariableDoesNotExist, VariableNode, render_value_in_context
from django.utils.translation import gettext as _

from messaging.content.budget import TooMuchWork
from messaging.content.plain_text import html_to_text
from messaging.errors import InvalidInput

logger = logging.getLogger(__name__)

MAX_SOURCE_BYTES = 512 * 1024
# partialdef/partial: partials calling partials multiply a template without any loop.
FORBIDDEN_TAGS = {"load", "include", "extends", "ssi", "debug", "csrf_token", "url", "lorem", "partialdef", "partial"}
FORBIDDEN_NAMES = {"settings", "request", "user", "perms", "csrf_token", "view", "messages", "sql_queries"}


class MissingArgument(Variable):
    """A variable given to a filter (`|default:nickname`). Django raises when it is missing,
    which was a server error at send; here it is missing like any other variable: it
    renders as the missing default and the render reports it (the context records it)."""

    __slots__ = ()

    def resolve(self, context):
        try:
            return super().resolve(context)
        except VariableDoesNotExist:
            default = context.template.engine.string_if_invalid
            return default % self.var if "%s" in default else default


class MessageParser(Parser):
    def compile_filter(self, token):
        expression = super().compile_filter(token)
        for _function, arguments in expression.filters:
            for is_variable, argument in arguments:
                if is_variable and type(argument) is Variable:
                    argument.__class__ = MissingArgument  # same state, lenient resolve
        return expression


class MessageTemplate(Template):
    def compile_nodelist(self):
        """Template.compile_nodelist with MessageParser (from_string only: no origin name)."""
        lexer = DebugLexer(self.source) if self.engine.debug else Lexer(self.source)
        parser = MessageParser(lexer.tokenize(), self.engine.template_libraries, self.engine.template_builtins, self.origin)
        try:
            nodelist = parser.parse()
            self.extra_data = parser.extra_data
            return nodelist
        except Exception as e:
            if self.engine.debug:
                e.template_debug = self.get_exception_info(e, e.token)
            raise


class MessageEngine(Engine):
    def from_string(self, template_code: str) -> MessageTemplate:
        return MessageTemplate(template_code, engine=self)


@lru_cache(maxsize=2)
def engine(*, html: bool) -> Engine:
    """No loaders, no tag libraries. A missing variable renders as
    MAILROOM_MISSING_VARIABLE_DEFAULT ("" keeps filters such as `default` working)."""
    return MessageEngine(
        debug=True,
        autoescape=html,
        libraries={},
        # padding filters with a bounded width; a `for` that counts against the render budget
        builtins=["messaging.content.filters", "messaging.content.budget"],
        string_if_invalid=settings.MAILROOM_MISSING_VARIABLE_DEFAULT,
    )


_missing: ContextVar[set[str] | None] = ContextVar("mailroom_missing_variables", default=None)
VARIABLE_HEAD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)")


def check_source(source: str, *, part: str) -> None:
    """Refuse oversize sources, forbidden tags and names, and syntax errors — naming the line."""
    if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise InvalidInput(
            _("The %(part)s is too large (%(size)s KB; the limit is %(max)s KB).")
            % {"part": part, "size": len(source.encode()) // 1024, "max": MAX_SOURCE_BYTES // 1024},
            fields={part: [_("Too large.")]},
        )
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            word = token.contents.split(" ", 1)[0]
            if word in FORBIDDEN_TAGS:
                raise _syntax(part, token.lineno, _("the {%% %(tag)s %%} tag is not allowed in messages") % {"tag": word})
        elif token.token_type == TokenType.VAR:
            head = VARIABLE_HEAD.match(token.contents)
            if head and head.group(1) in FORBIDDEN_NAMES:
                raise _syntax(part, token.lineno, _("“%(name)s” is not available in messages") % {"name": head.group(1)})
    try:
        engine(html=False).from_string(source)
    except TemplateSyntaxError as error:
        line = getattr(error, "template_debug", {}).get("line", "?")
        raise _syntax(part, line, str(error)) from error


def _syntax(part: str, line, message: str) -> InvalidInput:
    text = _("Line %(line)s of the %(part)s: %(message)s") % {"line": line, "part": part, "message": message}
    return InvalidInput(text, code="template_syntax", fields={part: [text]})


# --- compile once ----------------------------------------------------------------------
def mjml_to_html(source: str) -> str:
    import mjml

    # Browsers post textareas with CRLF line ends, and mjml-python refuses a CR inside
    # <mj-head> ("unexpected token in root template"): compile with plain LF.
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    try:
        return mjml.mjml2html(source, fonts={})  # no remote fonts: offline, private
    except ValueError as error:
        raise InvalidInput(_("MJML error: %(error)s") % {"error": error}, code="mjml", fields={"body": [str(error)]}) from error


def inline_css(html: str) -> str:
    from premailer import Premailer

    return Premailer(
        html,
        allow_network=False,
        disable_validation=True,
        keep_style_tags=True,  # media queries for mobile clients
        remove_classes=False,
        strip_important=False,
        cssutils_logging_level=logging.CRITICAL,
    ).transform()


TEMPLATE_TAG = re.compile(r"{{.*?}}|{%.*?%}", re.DOTALL)
PLACEHOLDER = re.compile(r"mrtag(\d{5})x")
# Placeholders between rows, or between cells: where an HTML parser would move them out of
# the table (before it), as it does with any text there.
BETWEEN_ROWS = re.compile(r"(<(?:table|tbody|thead|tfoot)\b[^>]*>|</(?:tr|thead|tbody|tfoot)>)(\s*(?:mrtag\d{5}x\s*)+)(?=<)", re.IGNORECASE)
BETWEEN_CELLS = re.compile(r"(<tr\b[^>]*>|</t[dh]>)(\s*(?:mrtag\d{5}x\s*)+)(?=<(?:td|th|/tr)\b)", re.IGNORECASE)


def keep_tags_in_tables(html: str) -> str:
    """The HTML with each placeholder that stands between rows put in a row of its own, and
    each between cells in a cell, so a `{% for %}` over rows stays around its rows in the
    text part (a row of only tags is then tucked away, see tuck_block_tags)."""
    html = BETWEEN_ROWS.sub(lambda m: f"{m.group(1)}<tr><td>{m.group(2).strip()}</td></tr>", html)
    return BETWEEN_CELLS.sub(lambda m: f"{m.group(1)}<td>{m.group(2).strip()}</td>", html)


def tuck_block_tags(text: str, tags: list[str]) -> str:
    """Lines of the text part that hold only `{% %}` tags render as nothing, so their tags
    move to the start of the next line: a loop over list items gives one `* item` a line,
    and a line of tags between two blank lines takes one of them along, so an `{% if %}`
    around a paragraph leaves no extra blank line."""

    def only_block_tags(line: str) -> bool:
        indices = PLACEHOLDER.findall(line)
        return not PLACEHOLDER.sub("", line).strip() and all(tags[int(index)].startswith("{%") for index in indices)

    lines = text.split("\n")
    kept: list[str] = []
    pending, skip_blank_line = "", False
    for index, line in enumerate(lines):
        if line.strip() and only_block_tags(line):
            after_blank = not kept or only_block_tags(kept[-1])  # a kept line of tags renders blank too
            before_blank = index + 1 < len(lines) and not lines[index + 1].strip()
            skip_blank_line = skip_blank_line or (after_blank and before_blank)
            pending += "".join(line.split())
        elif skip_blank_line and not line.strip():
            skip_blank_line = False
        else:
            kept.append(pending + line)
            pending, skip_blank_line = "", False
    if pending:
        kept.append(pending)
    return "\n".join(kept)


def compile_body(*, body_format: str, body: str, text_body: str) -> tuple[str, str]:
    """(compiled HTML, text part) for a version; raises InvalidInput naming the problem.
    Template tags are swapped for inert placeholders while MJML and the CSS inliner run
    (they would otherwise URL-encode `{{ url }}` inside href attributes), then put back."""
    if not body:
        return "", text_body
    tags: list[str] = []

    def protect(match: re.Match) -> str:
        tags.append(match.group(0))
        return f"mrtag{len(tags) - 1:05d}x"

    html = TEMPLATE_TAG.sub(protect, body)
    html = inline_css(mjml_to_html(html) if body_format == "mjml" else html)
    # from the placeholders, so tags inside attributes survive
    text = text_body or tuck_block_tags(html_to_text(keep_tags_in_tables(html)), tags)

    def restore(content: str) -> str:
        return PLACEHOLDER.sub(lambda m: tags[int(m.group(1))], content)

    return restore(html), text if text_body else restore(text)


# --- render per recipient --------------------------------------------------------------
@dataclass
class Rendered:
    subject: str = ""
    preheader: str = ""
    html: str = ""
    text: str = ""
    sms: str = ""
    missing: list[str] = field(default_factory=list)


@lru_cache(maxsize=512)
def compiled_templates(version, content_hash: str) -> dict:
    """The parsed Django templates of a saved version, built once per process. A model
    instance hashes and compares by primary key, so the cache is keyed by the version's id;
    and by its content hash too, so a reused primary key (SQLite can reuse one) never serves
    stale text. Versions are immutable: the first instance seen speaks for every other."""
    return parse_parts(
        subject=version.subject,
        preheader=version.preheader,
        html=version.compiled_html,
        text=version.compiled_text,
        sms=version.sms_body,
    )


class MergeVariableNode(VariableNode):
    """`{{ value }}` over plain data (see plain_data): a str is escaped directly and an int
    printed as is; anything else (filter output, floats, dates, SafeStrings) takes Django's
    own path. The same output as VariableNode without its per-variable localisation and
    lazy-escape wrappers, which were a third of a newsletter's render time."""

    def render(self, context):
        value = self.filter_expression.resolve(context)
        kind = type(value)
        if kind is str:
            return html_module.escape(value) if context.autoescape else value
        if kind is int and not settings.USE_THOUSAND_SEPARATOR:
            return str(value)
        return render_value_in_context(value, context)


def parse_parts(**parts: str) -> dict:
    templates = {name: engine(html=name == "html").from_string(source) for name, source in parts.items() if source}
    for template in templates.values():
        for node in template.nodelist.get_nodes_by_type(VariableNode):
            if type(node) is VariableNode:
                node.__class__ = MergeVariableNode  # same state, cheaper render
    return templates


class PlainData(dict):
    """A dict that reports the keys a template asked for and did not find. Missing values
    render as the configured default (filters such as `default` still apply)."""

    __slots__ = ("path",)

    def __missing__(self, key: str):
        sink = _missing.get()
        if sink is not None:
            sink.add(f"{getattr(self, 'path', '')}{key}")
        if hasattr(dict, key):  # never fall back to a dict method ({{ cart.items }})
            return settings.MAILROOM_MISSING_VARIABLE_DEFAULT
        raise KeyError(key)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def plain_data(value, path: str = ""):
    """Deep-copy a context into plain, recording types: dicts, lists, strings, numbers.
    Anything else (a model instance, a function) becomes its string form, and a str
    subclass (a SafeString) becomes a plain str, so nothing skips escaping. Runs once per
    recipient, so the common leaves take the shortest path."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or isinstance(value, dict):
        data = PlainData()
        data.path = path
        for key, item in value.items():
            data[key if type(key) is str else str(key)] = item if type(item) in _SCALARS else plain_data(item, f"{path}{key}.")
        return data
    if isinstance(value, (list, tuple)):
        return [plain_data(item, path) for item in value]
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (int, float)):
        return value
    return str(value)


class RecordingContext(Context):
    def __getitem__(self, key: str):
        # Context.__getitem__, inlined: it runs for every variable of every recipient.
        for layer in reversed(self.dicts):
            if key in layer:
                return layer[key]
        sink = _missing.get()
        if sink is not None:
            sink.add(key)
        raise KeyError(key)


def render_parts(templates: dict, context: dict) -> Rendered:
    """Merge plain data into parsed templates; `missing` names what was not found."""
    data = context if isinstance(context, PlainData) else plain_data(context)
    result = Rendered()
    missing: set[str] = set()
    token = _missing.set(missing)
    context = RecordingContext(data)  # its render budget (budget.py) is made by the first loop: one per message
    name = ""
    try:
        for name, template in templates.items():
            context.autoescape = name == "html"
            # A plain str, not a SafeString: wherever the console shows rendered content,
            # Django must still escape it.
            setattr(result, name, str.__str__(template.render(context)))
    except TooMuchWork as error:
        raise too_much_work(name) from error
    except (ValueError, TypeError, ArithmeticError, LookupError, AttributeError) as error:
        # A filter given an argument it cannot use ({{ name|wordwrap:"0" }}, ljust:"abc"; and
        # inside Django floatformat:"" raises IndexError, join:3 AttributeError): a clear
        # error for the person, never a server error.
        if isinstance(error, InvalidInput):
            raise
        raise InvalidInput(
            _("The %(part)s could not be rendered: %(error)s") % {"part": name, "error": error or type(error).__name__},
            code="template_render",
            fields={name: [str(error)]},
        ) from error
    finally:
        _missing.reset(token)
    result.missing = sorted(missing)
    return result


TOO_MUCH_WORK = "template_too_much_work"
PART_LABELS = {"html": "body", "text": "text version", "sms": "SMS text"}


def too_much_work(part: str, *, field: str | None = None) -> InvalidInput:
    """The error of a render stopped by the budget (budget.py), naming the part; its field
    is the part's name unless given."""
    field = field or part
    part = PART_LABELS.get(part, part)
    text = _(
        "The %(part)s needs too much work to render: its loops go over too many items (the limits are %(steps)s "
        "loop steps, %(size)s characters and %(seconds)s seconds per message). Loop over fewer or shorter items."
    ) % {
        "part": part,
        "steps": settings.MAILROOM_RENDER_MAX_STEPS,
        "size": settings.MAILROOM_RENDER_MAX_OUTPUT,
        "seconds": settings.MAILROOM_RENDER_MAX_SECONDS,
    }
    return InvalidInput(text, code=TOO_MUCH_WORK, fields={field: [text]})


def mentions(version, *, extra: str = "") -> Callable[[str], bool]:
    """`mentions(version)("loyalty.balance")`: does any part of the version use the name?
    A substring test on the source, enough to decide whether a costly resolver must run."""
    source = "\n".join(part or "" for part in (version.subject, version.preheader, version.body, version.text_body, version.sms_body))
    return lambda name: name in source


def render_version(version, context: dict) -> Rendered:
    return render_parts(compiled_templates(version, version.content_hash), context)


def render_strict(source: str, context: dict, *, html: bool = False, part: str = "body") -> str:
    """One-off content (API, raw enqueue): same safety checks, and a missing variable is an
    error naming it, because there is no preview where someone would have seen a warning."""
    if not source or ("{{" not in source and "{%" not in source):
        return source
    check_source(source, part=part)
    rendered = render_parts({"html" if html else "text": engine(html=html).from_string(source)}, context)
    if rendered.missing:
        raise InvalidInput(
            _("Missing template variable(s) in %(part)s: %(names)s") % {"part": part, "names": ", ".join(rendered.missing)},
            code="missing_variable",
        )
    return rendered.html if html else rendered.text
