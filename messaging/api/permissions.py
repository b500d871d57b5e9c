"""API access follows the roles: every view declares which policy (messaging.policies, or
the higher app's own) guards each of its actions, and HasCapability asks it.

    capabilities = {
        "list": policies.can_view_contacts,          # a viewset action…
        "subscriptions:patch": policies.can_change_subscriptions,  # …per HTTP method
        "get": policies.can_view_messages,            # or a plain APIView's method
    }

Lookup order: "<action>:<method>", "<action>", "<method>". Anything not declared is
refused, so a new endpoint is closed until someone says who may use it. Unauthenticated
requests get 401 (DRF turns a refusal without credentials into NotAuthenticated).
"""

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from messaging.policies import Policy

if TYPE_CHECKING:  # rest_framework.views imports this module through the settings
    from rest_framework.views import APIView


def policy_for(view: "APIView", request: Request) -> Policy | None:
    capabilities: dict[str, Policy] = getattr(view, "capabilities", {})
    action, method = getattr(view, "action", None), request.method.lower()
    for name in (f"{action}:{method}" if action else None, action, method):
        if name and name in capabilities:
            return capabilities[name]
    return None


def _has_handler(view: "APIView", method: str) -> bool:
    action_map = getattr(view, "action_map", None)  # viewsets: the router's method → action
    return method in action_map if action_map is not None else hasattr(view, method)


class HasCapability(BasePermission):
    def has_permission(self, request: Request, view: "APIView") -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if getattr(view, "action", None) == "metadata" or request.method == "OPTIONS":
            return True  # describing an endpoint reveals nothing the schema does not
        if not _has_handler(view, request.method.lower()):
            return True  # let DRF answer 405 Method Not Allowed
        policy = policy_for(view, request)
        return bool(policy and policy(user))
