"""Segments: the rule compiler, the field registry and the actions on segments."""
