"""Every resource any app publishes says who may use each of its actions."""

from config.api import route_modules

STANDARD = {"list": "get", "retrieve": "get", "create": "post", "update": "put", "partial_update": "patch", "destroy": "delete"}


def test_every_published_action_names_its_policy():
    missing = []
    for module in route_modules():
        for route in module.routes:
            capabilities = route.viewset.capabilities
            actions = [(name, method) for name, method in STANDARD.items() if hasattr(route.viewset, name)]
            actions += [(extra.__name__, method) for extra in route.viewset.get_extra_actions() for method in extra.mapping]
            for name, method in actions:
                if name == "update" and "put" not in route.viewset.http_method_names:
                    continue
                if f"{name}:{method}" not in capabilities and name not in capabilities:
                    missing.append(f"{route.viewset.__name__}.{name} ({method})")
    assert not missing, f"actions without a policy (refused to everyone): {missing}"


def test_messaging_publishes_its_resources():
    prefixes = {route.prefix for module in route_modules() for route in module.routes}
    assert {"contacts", "templates", "messages", "suppressions"} <= prefixes
