"""django-q2 entry points for automations. Thin: plain arguments, call the runner."""

from marketing.automations.runner import run_due_steps
from marketing.automations.triggers import scan_triggers
from messaging.delivery.work import until_kick_window_closes

RUN_TIME_BUDGET = 50.0  # seconds; under the cluster timeout


def run_automations(*, limit: int = 200) -> int:
    """Every minute and after each triggering event: start scheduled / date / segment
    runs that came due, then execute due steps; returns steps executed."""
    scan_triggers()
    return run_due_steps(limit=limit, time_budget=RUN_TIME_BUDGET)


def run_automation_steps(*, limit: int = 200, kicked_at: float | None = None) -> int:
    """Kicked when a run is started or resumed: execute due steps."""
    return until_kick_window_closes(
        lambda budget: run_due_steps(limit=limit, time_budget=budget), kicked_at=kicked_at, time_budget=RUN_TIME_BUDGET
    )
