"""Who may do what with campaigns: one function per capability, used by the console views,
the Unfold actions (`has_<action>_permission`) and any API alike. The four-eyes rule is a
domain rule, not a permission: `approve_campaign` enforces it whoever calls."""

from django.contrib.auth.models import AbstractBaseUser


def can_view_campaigns(user: AbstractBaseUser) -> bool:
    return user.is_active and user.has_perm("marketing.view_campaign")


def can_edit_campaign(user: AbstractBaseUser) -> bool:
    return user.is_active and user.has_perm("marketing.change_campaign")


def can_create_campaign(user: AbstractBaseUser) -> bool:
    return user.is_active and user.has_perm("marketing.add_campaign")


def can_approve_campaign(user: AbstractBaseUser) -> bool:
    return user.is_active and user.has_perm("marketing.approve_campaign")


def can_send_campaign(user: AbstractBaseUser) -> bool:
    """Schedule, reschedule, pause, resume, cancel."""
    return user.is_active and user.has_perm("marketing.send_campaign")


def can_view_report(user: AbstractBaseUser) -> bool:
    return user.is_active and user.has_perm("marketing.report_campaign")
