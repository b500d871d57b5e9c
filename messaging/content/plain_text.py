"""The text part of an email, from its HTML (inscriptis lays the text out).

Compiled once per template version, never per recipient. Emails lay themselves out with
tables (MJML writes them with role="presentation"): those become plain blocks, so only
tables of data are drawn as columns. Inline styles are for mail clients that show HTML,
so only `display:none` is kept from them (what is hidden there is hidden here too); the
text's layout comes from its tags:

    Spring & summer                  <h1>, paragraphs, lists: blocks with a blank line around

    * First item                     <ul> items; <ol> items are numbered (1. 2.)
      + nested item                  a list inside an item is indented

    Item      Qty  Price             a table of data: aligned columns
    Blue mug  2    12.00 €

    See your order (https://…).      a link: its text, then its address in brackets
"""

import re

from inscriptis.css_profiles import STRICT_CSS_PROFILE
from inscriptis.html_engine import Inscriptis
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_document_state import HtmlDocumentState
from inscriptis.model.html_element import HtmlElement
from inscriptis.model.tag import CustomHtmlTagHandlerMapping
from lxml import etree
from lxml import html as lxml_html

HIDDEN = re.compile(r"display\s*:\s*none", re.IGNORECASE)
LAYOUT_PARTS = "./tbody | ./thead | ./tfoot | ./tr | ./*/tr | ./tr/td | ./tr/th | ./*/tr/td | ./*/tr/th"


def _link_start(state: HtmlDocumentState, attrs: dict) -> None:
    state.link_target = attrs.get("href", "")


def _link_end(state: HtmlDocumentState) -> None:
    if state.link_target:
        state.tags[-1].write(f" ({state.link_target})")


_CSS = STRICT_CSS_PROFILE | {
    # a blank line between blocks, as between paragraphs (MJML puts each text in a div)
    "div": HtmlElement(display=Display.block, margin_before=1, margin_after=1),
    # the bullet takes the padding: "* item" at the margin, "  + item" a level down
    "ul": HtmlElement(display=Display.block, padding_inline=2),
    "ol": HtmlElement(display=Display.block, padding_inline=2),
}
_CONFIG = ParserConfig(css=_CSS, custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping({"a": _link_start}, {"a": _link_end}))


def _text_layout(tree: lxml_html.HtmlElement) -> None:
    """Leave in `tree` only what lays out the text: hidden elements dropped, inline styles
    removed, layout tables turned into blocks, a blank line around each list."""
    for element in tree.xpath("//*[@style]"):
        if HIDDEN.search(element.get("style")):
            element.drop_tree()  # its tail (the text after it) stays
        else:
            del element.attrib["style"]
    for table in tree.xpath("//table[@role='presentation']"):
        for part in table.xpath(LAYOUT_PARTS):
            part.tag = "div"
        table.tag = "div"
    for outer_list in tree.xpath("//ul[not(ancestor::li)] | //ol[not(ancestor::li)]"):
        # in a block of its own: a margin on the list itself would come between its items
        wrapper = etree.Element("div")
        outer_list.addprevious(wrapper)
        wrapper.append(outer_list)  # moves it, with its tail
        wrapper.tail, outer_list.tail = outer_list.tail, None


def html_to_text(html: str) -> str:
    """The plain-text version of an HTML email: no tags, no entities, at most one blank
    line in a row, no trailing spaces."""
    if not html.strip():
        return ""
    try:
        tree = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):  # nothing but comments or whitespace
        return ""
    _text_layout(tree)
    text = Inscriptis(tree, _CONFIG).get_text().replace("\xa0", " ")
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
