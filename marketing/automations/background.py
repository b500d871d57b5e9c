"""The automation runner as background work: one kick, after the transaction commits.

Kept apart from the runner so that the actions, the approvals and the triggers can wake it
without importing what it runs."""

from messaging.delivery.work import after_commit

RUN_TASK = "marketing.tasks.run_automation_steps"


def kick_runner() -> None:
    after_commit(RUN_TASK)
