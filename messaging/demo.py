"""Demo data beyond contacts and topics: higher apps register a loader from their
AppConfig.ready() and `seed_demo` runs each after its own part, so this module never
imports them. A loader is idempotent and returns one line saying what it added."""

from collections.abc import Callable

_loaders: list[Callable[[], str]] = []


def register_demo_loader(loader: Callable[[], str]) -> None:
    if loader not in _loaders:
        _loaders.append(loader)


def demo_loaders() -> list[Callable[[], str]]:
    return list(_loaders)
