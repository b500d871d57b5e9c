"""Failed cluster tasks reach Sentry (when config/settings.py started it: SENTRY_DSN).

django-q2's `error_reporter` option loads reporters from installed packages' entry points
("djangoq.errorreporters"); the only Sentry one, django-q-sentry 0.1.6, calls
`sentry_sdk.push_scope`, which sentry-sdk 3 removed. So the cluster reports through
django-q2's documented `post_execute` signal instead: one event per failed task, grouped
by the task's function, with django-q2's error text and traceback (scrubbed by
config.sentry.scrub_event like every event). Task arguments are never sent.
"""

import sentry_sdk

from messaging.schedules import dotted_path


def report_failed_task(sender, task: dict, **kwargs) -> None:
    """post_execute receiver (runs in the cluster's monitor process after each task)."""
    if task.get("success", True) or not sentry_sdk.get_client().is_active():
        return
    func = dotted_path(task.get("func") or "unknown")
    result = str(task.get("result") or "")
    summary = result.split(" : Traceback", 1)[0].strip().splitlines()[0] if result.strip() else "no error text"
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = ["django-q", func]
        scope.set_tag("django_q.func", func)
        scope.set_context(
            "django_q_task",
            {"id": task.get("id"), "name": task.get("name"), "group": task.get("group"), "attempts": task.get("attempt_count")},
        )
        scope.set_extra("error", result[:8000])
        sentry_sdk.capture_message(f"Cluster task {func} failed: {summary[:300]}", level="error")
