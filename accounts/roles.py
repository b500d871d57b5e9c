"""Roles are Django groups with permissions. This table is the one place they are defined;
`setup_roles` and the post-migrate hook both apply it, so a fresh database and an
upgraded one end up the same. Models that do not exist yet are skipped, so later apps
can be listed before they ship. It names every app's permissions, so it lives in the app
listed last (accounts), above messaging, marketing and growth, which never import it.
"""

from django.apps import apps
from django.contrib.auth.models import Group, Permission

from messaging.audit import m2m_audited_by_caller, m2m_change, record_audit, related_labels

VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"
ALL = (VIEW, ADD, CHANGE, DELETE)
# Growth's own permissions (Meta.permissions): <verb>_<model>.
ADJUST, ISSUE, DISABLE, REJECT = "adjust", "issue", "disable", "reject"

ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    "Marketer": {
        "messaging.contact": (VIEW, ADD, CHANGE),
        "messaging.importjob": (VIEW,),  # the console imports they started (and their colleagues')
        "messaging.topic": (VIEW, ADD, CHANGE),
        "messaging.signupform": ALL,
        "messaging.subscription": (VIEW, ADD, CHANGE),
        "messaging.consentrecord": (VIEW,),
        "messaging.suppression": (VIEW,),
        "messaging.outboxmessage": (VIEW,),
        "messaging.sandboxmessage": (VIEW,),
        "messaging.template": ALL,  # delete: only one never sent (messaging.content.retirement)
        "messaging.templateversion": (VIEW,),
        "marketing.segment": (*ALL, "refresh"),
        "marketing.segmentmember": (VIEW,),
        "marketing.event": (VIEW, ADD),
        "marketing.order": (VIEW, ADD),
        "marketing.dailystat": (VIEW,),
        "growth.referralprogram": (VIEW, ADD, CHANGE),
        "growth.loyaltyprogram": (VIEW, ADD, CHANGE),
        "growth.loyaltytier": ALL,
        "growth.referral": (VIEW, REJECT),
        "growth.referralcode": (VIEW, ADD),
        "growth.referralreward": (VIEW,),
        "growth.couponcode": (VIEW, ADD),  # add: upload a program's coupon pool
        "growth.loyaltyaccount": (VIEW,),
        "growth.loyaltytransaction": (VIEW,),
        "growth.giftcard": (VIEW, ISSUE),
        "growth.giftcardtransaction": (VIEW,),
        "marketing.automation": (*ALL, "activate"),
        "marketing.automationstep": ALL,
        "marketing.automationrun": (VIEW,),
        "marketing.automationsteplog": (VIEW,),
        "marketing.campaign": (VIEW, ADD, CHANGE, "send", "report"),
    },
    "Approver": {
        "marketing.automation": (VIEW, "approve"),  # fan-out automations: four eyes like campaigns
        "marketing.segment": (VIEW,),
        "marketing.campaign": (VIEW, "approve", "report"),
        "messaging.template": (VIEW,),
        "messaging.templateversion": (VIEW,),
        "messaging.contact": (VIEW,),
        "messaging.topic": (VIEW,),
        "messaging.subscription": (VIEW,),
        "messaging.consentrecord": (VIEW,),
        "messaging.suppression": (VIEW,),
    },
    "Ops": {
        "messaging.contact": (VIEW,),
        "messaging.topic": (VIEW,),
        "messaging.subscription": (VIEW,),
        "messaging.consentrecord": (VIEW,),
        "messaging.suppression": ALL,
        "messaging.auditentry": (VIEW,),
        "messaging.outboxmessage": (VIEW, ADD, CHANGE),  # add: enqueue through the API
        "messaging.deliveryattempt": (VIEW,),
        "messaging.deliveryevent": (VIEW,),
        "messaging.provider": (VIEW, CHANGE),  # run them; where they send (add, configure): Admin only
        "messaging.sandboxmessage": (VIEW,),
        "messaging.inbox": ALL,
        "messaging.inboxmessage": (VIEW,),
        "django_q.schedule": (VIEW,),  # add/change: Admin only (picking what the cluster runs)
        "messaging.webhookendpoint": ALL,  # outbound webhooks: where events go, and their secrets
        "messaging.webhookdelivery": (VIEW, CHANGE),  # change: replay a delivery
        "messaging.webhookattempt": (VIEW,),
        "django_q.failure": (VIEW, DELETE),
        "django_q.success": (VIEW,),
        "django_q.ormq": (VIEW,),
        "marketing.event": (VIEW, ADD),
        "marketing.order": (VIEW, ADD),
        "marketing.dailystat": (VIEW,),
        "growth.loyaltyaccount": (VIEW,),
        "growth.loyaltytransaction": (VIEW, ADD),  # add: redeem points for a customer (API)
        "growth.giftcard": (VIEW, DISABLE),
        "growth.giftcardtransaction": (VIEW, ADD),  # add: redeem / refund a card (API)
        "growth.referral": (VIEW,),
        "marketing.automation": (VIEW,),
        "marketing.automationrun": (VIEW,),
        "marketing.automationsteplog": (VIEW,),
        "marketing.paymentwebhookevent": (VIEW,),
    },
    "Support": {
        "messaging.contact": (VIEW, CHANGE),
        "messaging.topic": (VIEW,),
        "messaging.subscription": (VIEW, CHANGE),
        "messaging.consentrecord": (VIEW,),
        "messaging.suppression": (VIEW, ADD),
        "messaging.auditentry": (VIEW,),
        "messaging.outboxmessage": (VIEW, CHANGE),
        "messaging.sandboxmessage": (VIEW,),
        "messaging.inboxmessage": (VIEW,),
        "marketing.event": (VIEW,),
        "marketing.order": (VIEW,),
        "growth.loyaltyaccount": (VIEW, ADJUST),
        "growth.loyaltytransaction": (VIEW, ADD),
        "growth.giftcard": (VIEW, DISABLE),
        "growth.giftcardtransaction": (VIEW, ADD),
        "growth.referral": (VIEW, REJECT),
        "growth.referralcode": (VIEW, ADD),
        "growth.referralreward": (VIEW,),
        "growth.couponcode": (VIEW,),
        "marketing.automationrun": (VIEW,),
        "marketing.automationsteplog": (VIEW,),
    },
}
ADMIN_ROLE = "Admin"  # every permission there is


def _apply(role: str, permissions: list[Permission]) -> int:
    """Give the role exactly `permissions`. A role that existed and differed (a permission
    removed by hand, new models after an upgrade) gets one audit entry; a new one none."""
    group, created = Group.objects.get_or_create(name=role)
    before = [] if created else related_labels(group, "permissions")
    with m2m_audited_by_caller():
        group.permissions.set(permissions)
    after = related_labels(group, "permissions")
    if not created and after != before:
        record_audit(actor=None, verb="permissions_changed", target=group, changes=m2m_change("permissions", before, after))
    return len(after)


def setup_roles() -> dict[str, int]:
    """Create or update the role groups; returns {role: number of permissions}."""
    result = {}
    for role, grants in ROLES.items():
        wanted = []
        for label, verbs in grants.items():
            app_label, model = label.split(".")
            codenames = [f"{verb}_{model}" for verb in verbs]
            wanted += list(Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
        result[role] = _apply(role, wanted)
    result[ADMIN_ROLE] = _apply(ADMIN_ROLE, list(Permission.objects.all()))
    return result


def setup_roles_after_migrate(sender, **kwargs) -> None:
    """post_migrate fires once per app with models; the last app's signal sees every permission."""
    if sender is not [config for config in apps.get_app_configs() if config.models_module][-1]:
        return
    setup_roles()
