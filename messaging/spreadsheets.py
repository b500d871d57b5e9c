"""Files people open in a spreadsheet: no formula may come from data (CSV injection).

OWASP's rule: a cell starting with =, +, -, @, a tab or a carriage return is a formula
to Excel, LibreOffice and Google Sheets (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`); a
leading apostrophe makes it text. Plain numbers (`+33612345678`, `-5`, `-`) compute
nothing and stay as they are, so phone numbers still read back on import.

django-import-export's IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT only drops one leading
"=" (`==1+1`, `+cmd|…` and `@SUM(…)` stay formulas, and empty cells become "None"), so
every export goes through `escape_formula` here instead.
"""

import re
from typing import Any

from import_export.formats import base_formats

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?[0-9 .,]*")


def escape_formula(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeCSV(base_formats.CSV):
    """CSV for import and export; on export every cell is formula-escaped."""

    def export_data(self, dataset, **kwargs):
        for index in range(len(dataset)):
            dataset[index] = tuple(escape_formula(cell) for cell in dataset[index])
        return super().export_data(dataset, **kwargs)
