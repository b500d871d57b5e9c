"""Campaigns: state machine, actions, audience and dry run, fan-out, A/B, guardrails."""
