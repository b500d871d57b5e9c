"""What the audit trail's verbs say to a person, in the console's language: the one map
from the stored verb ("approved", "step added") to its label. Verbs of every app live here
as plain strings (no import of marketing or growth); an unknown verb shows as stored.
A leaf (no models): the AuditEntry model reads its labels from here."""

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from messaging.consent_actions import ConsentAction

VERB_LABELS: dict[str, Promise] = {
    # any object
    "created": pgettext_lazy("audit verb", "created"),
    "changed": pgettext_lazy("audit verb", "changed"),
    "updated": pgettext_lazy("audit verb", "updated"),
    "deleted": pgettext_lazy("audit verb", "deleted"),
    "duplicated": pgettext_lazy("audit verb", "duplicated"),
    "activated": pgettext_lazy("audit verb", "activated"),
    "deactivated": pgettext_lazy("audit verb", "deactivated"),
    "imported": pgettext_lazy("audit verb", "imported"),
    "import queued": _("import queued"),
    "refreshed": pgettext_lazy("audit verb", "refreshed"),
    "revoked": pgettext_lazy("audit verb", "revoked"),
    "erased": pgettext_lazy("audit verb", "erased"),
    "test-sent": _("test sent"),
    "saved version": _("version saved"),
    "requeued": pgettext_lazy("audit verb", "requeued"),
    "resubmitted": pgettext_lazy("audit verb", "resubmitted"),
    # campaigns and automations
    "submitted": _("submitted for approval"),
    "approved": pgettext_lazy("audit verb", "approved"),
    "rejected": pgettext_lazy("audit verb", "rejected"),
    "approval withdrawn": _("approval withdrawn"),
    "returned to draft": _("returned to draft"),
    "scheduled": pgettext_lazy("audit verb", "scheduled"),
    "rescheduled": pgettext_lazy("audit verb", "rescheduled"),
    "started": _("sending started"),
    "paused": pgettext_lazy("audit verb", "paused"),
    "resumed": pgettext_lazy("audit verb", "resumed"),
    "cancelled": pgettext_lazy("audit verb", "cancelled"),
    "sent": pgettext_lazy("audit verb", "sent"),
    "recipient removed": _("recipient removed"),
    "picked A/B winner": _("A/B winner picked"),
    "step added": _("step added"),
    "step changed": _("step changed"),
    "step moved": _("step moved"),
    "step removed": _("step removed"),
    "steps replaced": _("steps replaced"),
    "members added": _("members added"),
    "members removed": _("members removed"),
    # contacts and consent
    "subscribed": pgettext_lazy("audit verb", "subscribed"),
    "suppressed": pgettext_lazy("audit verb", "suppressed"),
    "unsuppressed": _("suppression lifted"),
    "verification-sent": _("verification email sent"),
    "email-verified": _("email address verified"),
    "password-reset-requested": _("password reset requested"),
    "password-reset": _("password reset"),
    "password_set": _("password set"),
    # settings and rights
    "settings_changed": _("settings changed"),
    "email_delivery_changed": _("email delivery changed"),
    "roles_changed": _("roles changed"),
    "permissions_changed": _("permissions changed"),
    # growth
    "referral_signed_up": _("referral signed up"),
    "referral_qualified": _("referral qualified"),
    "referral_rewarded": _("referral rewarded"),
    "referral_rejected": _("referral rejected"),
    "referral_refused": _("referral refused"),
    "referral_reversed": _("referral reversed"),
    "points_earned": _("points earned"),
    "points_redeemed": _("points redeemed"),
    "points_adjusted": _("points adjusted"),
    "points_expired": _("points expired"),
    "points_reversed": _("points reversed"),
    "gift_card_issued": _("gift card issued"),
    "gift_cards_issued": _("gift cards issued"),
    "gift_card_redeemed": _("gift card redeemed"),
    "gift_card_refunded": _("gift card refunded"),
    "gift_card_expired": _("gift card expired"),
    "gift_card_disabled": _("gift card disabled"),
}
PREFERENCE_PREFIX = "preference-"


def verb_label(verb: str) -> str:
    """The label of an audit verb in the active language; the verb itself when unknown."""
    if label := VERB_LABELS.get(verb):
        return str(label)
    if verb.startswith(PREFERENCE_PREFIX):  # record_preference_change: one per ConsentRecord action
        action = verb.removeprefix(PREFERENCE_PREFIX)
        what = ConsentAction(action).label if action in ConsentAction.values else action
        return str(_("preferences: %(what)s") % {"what": str(what).lower()})
    return verb
