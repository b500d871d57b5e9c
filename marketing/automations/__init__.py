"""Automations: triggers start runs, the runner executes their steps (see runner.py)."""
