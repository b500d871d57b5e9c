"""Who may do what in marketing (see messaging.policies for the pattern)."""

from messaging.policies import requires

can_view_segments = requires("marketing.view_segment")
can_create_segments = requires("marketing.add_segment")
can_edit_segments = requires("marketing.change_segment")
can_delete_segments = requires("marketing.delete_segment")
can_refresh_segments = requires("marketing.refresh_segment")

can_view_events = requires("marketing.view_event")
can_track_events = requires("marketing.add_event")
can_view_orders = requires("marketing.view_order")
can_record_orders = requires("marketing.add_order")

can_view_automations = requires("marketing.view_automation")
can_create_automations = requires("marketing.add_automation")
can_edit_automations = requires("marketing.change_automation")  # settings and steps
can_delete_automations = requires("marketing.delete_automation")
can_activate_automations = requires("marketing.activate_automation")  # activate and pause
can_approve_automations = requires("marketing.approve_automation")  # fan-out ones; never one's own (the action checks)
can_view_automation_runs = requires("marketing.view_automationrun")
can_view_analytics = requires("marketing.view_dailystat")
