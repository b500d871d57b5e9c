"""What a person reads on a page: its text without tags, scripts, styles or attribute values,
for tests asserting that no raw JSON or snake_case key reaches people (issue 18, item 6)."""

import re
from html.parser import HTMLParser

HIDDEN = {"script", "style", "template", "head"}
# Data, not wording: event and property names a developer chose, shown in <code> or picked
# in a <select>; the page quotes them “like_this” when they sit in a sentence.
DATA = {"code", "option", "select", "textarea"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SNAKE = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")
QUOTED = re.compile(r"“[^”]*”")


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skipping: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        icon = "material-symbols-outlined" in (dict(attrs).get("class") or "").split()  # an icon's name is a ligature, not text
        if tag in HIDDEN | DATA or icon or (self.skipping and tag == self.skipping[-1]):
            self.skipping.append(tag)

    def handle_endtag(self, tag):
        if tag in self.skipping:  # an unclosed <option> ends with its </select>
            while self.skipping.pop() != tag:
                pass

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def raw_keys(html: str) -> list[str]:
    """snake_case words a person would read outside quotes, and raw JSON openings."""
    text = visible_text(html)
    found = SNAKE.findall(QUOTED.sub(" ", text))
    if '{"' in text or "{'" in text:
        found.append('{"')
    return found
