"""Outbound webhooks: endpoints, event emission, signed delivery (Standard Webhooks).

- `events`: the registry of event types (higher apps register theirs from their wiring).
- `addresses`: which URLs may be called (http(s) only, no private addresses: SSRF).
- `signing`: secrets and the webhook-id / webhook-timestamp / webhook-signature headers.
- `emit`: `emit(event_type, data)` writes one delivery per subscribed endpoint in the caller's transaction.
- `endpoints`: create / change / re-enable an endpoint, replay a delivery.
- `dispatch`: the cluster task body that sends due deliveries, per endpoint, oldest first.
"""
