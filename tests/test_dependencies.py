"""The Python dependencies: pyproject.toml declares them (the application's in [project],
the test tools in the `test` and `dev` groups), requirements/runtime.txt and
requirements/dev.txt lock them with hashes (`make lock`). The runtime lock, which `make run`
installs, holds no test tool; every pin of both locks carries a hash, so
`pip install --require-hashes` accepts them; every declared package is locked at a version
its range allows, the same in both locks; and every declared package is used."""

import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from django.conf import settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

BASE = Path(settings.BASE_DIR)
PYPROJECT = tomllib.loads((BASE / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME_LOCK = BASE / "requirements" / "runtime.txt"
DEV_LOCK = BASE / "requirements" / "dev.txt"

# Packages only tests, the linter or the benchmarks use: never in what `make run` installs.
TEST_ONLY = {"pytest", "playwright", "schemathesis", "hypothesis", "ruff", "time-machine", "aiosmtpd"}
# Declared packages nothing imports by name, and what uses them instead.
USED_WITHOUT_IMPORT = {
    "gunicorn": "the Procfile's web process",
    "honcho": "make run starts the Procfile with it",
    "boto3": "django-anymail's Amazon SES webhook views",
    "pytest-django": "a pytest plugin (DJANGO_SETTINGS_MODULE in pyproject.toml)",
    "ruff": "make lint",
}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)")


def read_lock(path: Path) -> dict[str, tuple[Version, list[str]]]:
    """{name: (version, hashes)} of a lock; a line that is neither a pin nor a hash of the
    pin above, nor a comment, fails (an unpinned or unhashed line installs unchecked)."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    name = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip().removesuffix("\\").strip()
        if not line:
            continue
        if match := PIN.match(line):
            name = canonicalize_name(match["name"])
            pins[name] = (Version(match["version"]), [])
            rest = line[match.end() :].strip()
        elif line.startswith("--hash=") and name is not None:
            rest = line
        else:
            pytest.fail(f"{path.name}:{number}: neither a pinned package nor its hash: {raw!r}")
        for option in rest.split():
            if not option.startswith("--hash=sha256:"):
                pytest.fail(f"{path.name}:{number}: unexpected {option!r} (markers are fine, other options are not)")
            pins[name][1].append(option)
    return pins


def group(name: str) -> list[Requirement]:
    requirements = []
    for item in PYPROJECT["dependency-groups"][name]:
        requirements += group(item["include-group"]) if isinstance(item, dict) else [Requirement(item)]
    return requirements


RUNTIME = [Requirement(item) for item in PYPROJECT["project"]["dependencies"]]
DEV = group("dev")


def test_the_runtime_lock_holds_no_test_tool():
    # given what make run installs
    runtime = read_lock(RUNTIME_LOCK)
    # then no test runner, plugin, browser driver, fuzzer or linter is in it
    leaked = sorted(name for name in runtime if name in TEST_ONLY or name.startswith("pytest-"))
    assert not leaked, f"test-only packages in {RUNTIME_LOCK.name}: {leaked}"


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda path: path.name)
def test_every_pin_has_a_hash(lock):
    pins = read_lock(lock)
    assert pins, f"{lock.name} pins nothing"
    unhashed = sorted(name for name, (_, hashes) in pins.items() if not hashes)
    assert not unhashed, f"{lock.name}: no --hash for {unhashed}"


def test_the_dev_lock_holds_the_runtime_lock_at_the_same_versions():
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    differ = {name: (str(version), str(dev[name][0]) if name in dev else None) for name, (version, _) in runtime.items()}
    assert {name: pair for name, pair in differ.items() if pair[0] != pair[1]} == {}


@pytest.mark.parametrize(
    ("requirement", "locks"),
    [pytest.param(requirement, [RUNTIME_LOCK, DEV_LOCK], id=requirement.name) for requirement in RUNTIME]
    + [pytest.param(requirement, [DEV_LOCK], id=f"dev:{requirement.name}") for requirement in DEV],
)
def test_a_declared_dependency_is_locked_at_a_version_it_allows(requirement, locks):
    name = canonicalize_name(requirement.name)
    for lock in locks:
        pins = read_lock(lock)
        # then the lock pins it, at a version the range in pyproject.toml admits
        if name not in pins:
            pytest.fail(f"{requirement} is declared in pyproject.toml but not in {lock.name}: run make lock")
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), f"{lock.name} pins {name}=={version}, outside {requirement}"


def test_runtime_and_test_dependencies_are_declared_apart():
    runtime = {canonicalize_name(requirement.name) for requirement in RUNTIME}
    assert not runtime & TEST_ONLY, "a test tool is declared as a runtime dependency"
    assert not {name for name in runtime if name.startswith("pytest")}


def test_every_declared_dependency_is_used():
    """A declared package is imported (or named, as INSTALLED_APPS and backend paths name
    them) by the code, the tests or the benchmarks, or is in USED_WITHOUT_IMPORT."""
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for folder in ("config", "messaging", "marketing", "growth", "tests", "bench")
        for path in (BASE / folder).rglob("*.py")
    )
    modules_of: dict[str, set[str]] = {}
    for module, distributions in packages_distributions().items():
        for distribution in distributions:
            modules_of.setdefault(canonicalize_name(distribution), set()).add(module)
    unused = []
    for requirement in RUNTIME + DEV:
        name = canonicalize_name(requirement.name)
        if name in USED_WITHOUT_IMPORT:
            continue
        modules = modules_of.get(name)
        assert modules, f"{name} is not installed here: run make install-dev"
        pattern = "|".join(re.escape(module) for module in sorted(modules))
        if not re.search(rf"^\s*(?:from|import)\s+(?:{pattern})\b|[\"'](?:{pattern})[\".']", sources, re.MULTILINE):
            unused.append(name)
    assert not unused, f"declared in pyproject.toml but used nowhere: {unused}"
