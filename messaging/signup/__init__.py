"""Sign-up forms with single or double opt-in (hosted page /f/<slug>/ and an embeddable snippet)."""
