"""Users and roles in the console's look, with changes audited (role grants and
permission changes through messaging.audit's m2m signal, password changes here)."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from messaging.admin.base import AuditedModelAdmin
from messaging.audit import record_audit

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(BaseUserAdmin, AuditedModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    # Set by logging in, not by hand: editable, the form re-saved them with every change
    # (and the audit showed a role grant as a last_login change).
    readonly_fields = ("last_login", "date_joined")

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        # Setting someone's password takes their account over: audited like a role grant
        # (who, whom, when; never the password), in the transaction that saves it.
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                user = self.get_object(request, unquote(id))
                record_audit(
                    actor=request.user,
                    verb="password_set",
                    target=user,
                    changes={"usable": {"before": None, "after": user.has_usable_password()}},
                )
        return response


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, AuditedModelAdmin):
    pass
