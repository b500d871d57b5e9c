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
