"""Automation steps: what each kind means, one concern per module.

- `validation`: the settings each kind takes (one DRF serializer per kind) and
  `clean_step_config`, which the actions call before a step is stored or goes live;
- `conditions`: whether a condition step's check holds for a run;
- `context`: what a send step's message can say (the run's trigger data, the order, the
  week's progress);
- `execution`: executing a step for one run (`execute_step`), which the runner calls.

Executing a step never commits on its own: the runner calls `execute_step` inside the
transaction that also advances the run and writes its log row, so a step happens exactly
once or not at all.

Settings per kind (the JSON in AutomationStep.config):

- send:      {"template": "cart-abandoned", "channel": "email", "topic": "promotions"?,
              "context": "order" | "weekly_progress"?, "once_per": "appointment_id"?}
             (`once_per`: one message per contact and value of that run property, whichever
             run gets there first, e.g. one confirmation per appointment booked then confirmed)
- wait:      {"minutes": 60} / {"hours": 24} / {"days": 7} / {"seconds": 30}
             or {"until": {"property": "appointment_at", "offset_minutes": -1440}}
             or {"until": {"attribute": "renewal_at", "offset_minutes": 0}}
             or {"until": {"time": "09:00", "weekday": 0}} (next such local time);
             "if_past": "continue" (default) or "skip_next" (skip the following step).
- condition: {"check": "consent", "topic": "promotions", "channel": "email"}
             {"check": "attribute" | "property", "name": "plan", "op": "eq", "value": "pro"}
             {"check": "tag", "tag": "vip"}  {"check": "event_since_start", "event": "order_paid"}
             "else": "exit" (default) or {"goto": <step number, later than this one>}.
- update:    {"set": {"lifecycle": "dormant"}, "unset": ["cart"], "add_tag": "x", "remove_tag": "y"}
             ("Set attribute or tag": through messaging.contacts.update_contact_attributes)
- subscribe / unsubscribe: {"topic": "tips", "channel": "email"?} (through messaging's consent
             actions; the consent record's details name the automation, the run and the step)
- exit:      {"reason": "…"}

`validation` is the reference: each serializer there names and checks these settings.
"""
