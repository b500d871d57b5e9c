"""Email previews in the console live in `<iframe sandbox srcdoc>`: no scripts, no same
origin. A link clicked inside would navigate the frame itself, where most sites refuse to be
framed (a blank "refused to connect" box). So the previewed document gets a
`<base target="_blank">` and every link `rel="noopener noreferrer"`, and the frame allows
popups that leave the sandbox: a link opens in a new tab, as it would from a mail client.

Only what is shown changes: stored and sent HTML never does."""

import re

# The sandbox tokens of every preview frame: popups only (never allow-scripts or allow-same-origin).
PREVIEW_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
BASE = '<base target="_blank">'
HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
HTML = re.compile(r"<html(\s[^>]*)?>", re.IGNORECASE)
DOCTYPE = re.compile(r"^\s*<!doctype[^>]*>", re.IGNORECASE)
LINK_WITHOUT_REL = re.compile(r"<a(?=[\s>])(?![^>]*\srel\s*=)", re.IGNORECASE)


def preview_document(html: str) -> str:
    """`html` ready for a preview frame: links open in a new tab, without an opener."""
    if not html:
        return html
    html = LINK_WITHOUT_REL.sub('<a rel="noopener noreferrer"', html)
    for pattern, insert in ((HEAD, BASE), (HTML, f"<head>{BASE}</head>"), (DOCTYPE, BASE)):
        if match := pattern.search(html):
            return html[: match.end()] + insert + html[match.end() :]
    return BASE + html
