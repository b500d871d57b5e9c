"""Analytics: rollups (the scheduled task's work), read-side queries over them, and the
plotly figures the console pages, the campaign/automation reports and growth draw."""
