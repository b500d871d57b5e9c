"""What the segment actions tell the rest of marketing, without importing it.

`segment_audience_changed` is sent when a person changed who is in a segment (its rules,
members added), inside the edit's transaction: a receiver that writes does so in the same
transaction, and a receiver that raises undoes the edit. Arguments: `segment`, `actor`
(the user, or None for the system) and `change` (a short translated phrase for the audit
trail, e.g. "rules changed"). Automations connect their receiver in `MarketingConfig.ready()`.
"""

from django.dispatch import Signal

segment_audience_changed = Signal()
