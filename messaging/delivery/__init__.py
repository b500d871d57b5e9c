"""Delivery: how a message leaves and what comes back.

`outbox` takes messages in (enqueue), `bulk` takes a fan-out's in (ids reserved, then
insert-from-select), `sending` claims due batches and hands them to providers, `throttle`
paces each provider, `work` leases batches to workers, `tracking` records opens, clicks and
provider events, `inbound` stores replies and runs inbox handlers, `logs` prunes delivery
attempts.
"""
