"""plotly.js served from our own static files (no CDN), straight out of the plotly package
so the 4.8 MB bundle is not copied into the repository: `{% static "vendor/plotly.min.js" %}`."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_DIR = Path(plotly.__file__).parent / "package_data"
SERVED = {"vendor/plotly.min.js": "plotly.min.js"}


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=PLOTLY_DIR)
        self.storage.prefix = "vendor"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path in SERVED and (PLOTLY_DIR / SERVED[path]).exists():
            found = str(PLOTLY_DIR / SERVED[path])
            return [found] if find_all else found
        return [] if find_all else None

    def list(self, ignore_patterns):
        for name in SERVED.values():
            if (PLOTLY_DIR / name).exists():
                yield name, self.storage
