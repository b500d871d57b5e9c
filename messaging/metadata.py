"""Metadata keys that name what a message counts for in reports.

The campaign or automation a message belongs to: every writer (the fan-out, the automations'
send step) and every reader (the analytics rollup, the calendar) names them here, so the two
sides cannot drift apart again. A leaf module (no imports) so that any messaging module can
use it. LEGACY_*: what the rollup once read (and the API once let callers set); rows stored
under them still count.
"""

CAMPAIGN_KEY = "campaign"
AUTOMATION_KEY = "automation"
LEGACY_CAMPAIGN_KEY = "campaign_id"
LEGACY_AUTOMATION_KEY = "automation_id"

# The approved WhatsApp template a message goes out as: {"sid": Content SID, "variables":
# {"1": "Ada", …}} filled for its contact when it is queued (messaging.whatsapp). Internal:
# the API may not set it, or a caller could send any approved template with any text.
WHATSAPP_TEMPLATE_KEY = "whatsapp_template"

DEFERRED_RENDER = "render"  # a message whose body is rendered when it is sent (messaging.delivery.outbox)

# The ids and flags reports count a message by: erasing a contact keeps these on her
# messages (messaging.erasure) and drops every other key.
REPORTED_KEYS = frozenset(
    {
        CAMPAIGN_KEY,
        LEGACY_CAMPAIGN_KEY,
        "variant",
        AUTOMATION_KEY,
        LEGACY_AUTOMATION_KEY,
        "automation_run",
        "step",
        "links",
        "template_version",
        "purpose",
        "notification",
        "test_send",
    }
)
# Metadata keys Mailroom writes itself and trusts when it reads them back: what to render at
# send (render), where clicks may go (links), which campaign/automation a message counts for
# in analytics, why a message exists (purpose, notification, test_send). Nothing from
# outside (the API) may set them. A new key the product writes belongs here.
INTERNAL_METADATA_KEYS = REPORTED_KEYS | {
    DEFERRED_RENDER,
    "missing_variables",
    "erased",  # messaging.erasure
    "weekly_digest",  # messaging.digest.DIGEST_KEY: the gate never holds the digest
    WHATSAPP_TEMPLATE_KEY,  # messaging.whatsapp: the approved template and its variables
}
