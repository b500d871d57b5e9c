"""What the segment actions tell the rest of marketing, without importing it.

`segment_audience_changing` is sent before a change to who is in a segment (rules edited,
members added or removed, the segment deleted), inside the edit's transaction: a receiver
that raises (a MailroomError with the reason) refuses the change. Campaigns connect theirs:
approvals that used the segment are withdrawn (invariant 9, approved means approved).

`segment_audience_changed` is sent when a person changed who is in a segment (its rules,
members added), inside the edit's transaction: a receiver that writes does so in the same
transaction, and a receiver that raises undoes the edit. Arguments: `segment`, `actor`
(the user, or None for the system) and `change` (a short translated phrase for the audit
trail, e.g. "rules changed"). Automations connect theirs.

Both take the same arguments; receivers are connected in `marketing.wiring`.
"""

from django.dispatch import Signal

segment_audience_changed = Signal()
segment_audience_changing = Signal()
