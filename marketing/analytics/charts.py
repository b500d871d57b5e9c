"""Plotly figures built on the server as plain dicts (JSON-ready). Pages embed them with
`json_script` and static/mailroom/charts.js draws them; the chart endpoints return them as
JSON. Campaign, automation and growth reports use the same helpers."""

import json
import math
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import plotly.io
from django.utils import timezone
from django.utils.formats import get_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketing.analytics import queries

LAYOUT = {
    "margin": {"l": 40, "r": 10, "t": 10, "b": 40},
    "height": 300,
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "legend": {"orientation": "h", "y": -0.2},
    "template": "none",
}
COLOURS = ["#0284c7", "#16a34a", "#f59e0b", "#db2777", "#7c3aed", "#64748b"]
WEEKDAYS = (
    gettext_lazy("Mon"),
    gettext_lazy("Tue"),
    gettext_lazy("Wed"),
    gettext_lazy("Thu"),
    gettext_lazy("Fri"),
    gettext_lazy("Sat"),
    gettext_lazy("Sun"),
)


def separators() -> str:
    """Plotly's decimal and thousands separators for the active language ("1,5" in French)."""
    return f"{get_format('DECIMAL_SEPARATOR')}{get_format('THOUSAND_SEPARATOR')}"[:2]


def figure(*traces, layout: dict | None = None) -> dict[str, Any]:
    """A plotly figure as a JSON-ready dict, in the console's look and the active language's
    number format."""
    fig = go.Figure(data=list(traces))
    fig.update_layout(**{**LAYOUT, "separators": separators(), **(layout or {})})
    return json.loads(fig.to_json())


# Where each kind of trace keeps the numbers it draws.
VALUES_OF = {"pie": "values", "heatmap": "z", "funnel": "x"}


def _numbers(values: Any) -> Iterator[float]:
    if isinstance(values, (list, tuple)):
        for value in values:
            yield from _numbers(value)
    elif isinstance(values, (int, float)) and not isinstance(values, bool):
        yield float(values)


def is_empty(fig: dict[str, Any]) -> bool:
    """True when no trace holds a number other than zero: plotly would draw bare −1..1 axes,
    so the page shows "No data for this period" instead."""
    for trace in fig.get("data", ()):
        key = VALUES_OF.get(trace.get("type", "scatter"), "x" if trace.get("orientation") == "h" else "y")
        if any(value and math.isfinite(value) for value in _numbers(trace.get(key))):
            return False
    return True


def card(chart_id: str, title: str, fig: dict[str, Any]) -> dict[str, Any]:
    """What console/analytics/chart.html draws: the figure, or the empty state."""
    return {"id": chart_id, "title": title, "figure": fig, "empty": is_empty(fig)}


HOUR_STEPS = (1, 2, 3, 6, 12, 24, 48, 168)


def hourly_axis(hours: Iterable[datetime], *, ticks: int = 8) -> dict[str, Any]:
    """An x axis over whole hours: padded by an hour each side, ticks on the hour. Without
    it, events that all fall in one hour give plotly a zero-width range, labelled in
    fractions of a millisecond."""
    hours = sorted(hours)
    if not hours:
        return {}
    first, last = hours[0] - timedelta(hours=1), hours[-1] + timedelta(hours=1)
    span = (last - first) / timedelta(hours=1)
    step = next((n for n in HOUR_STEPS if span / n <= ticks), HOUR_STEPS[-1])
    return {
        "type": "date",
        "range": [first.isoformat(), last.isoformat()],
        "tick0": first.replace(minute=0, second=0, microsecond=0).isoformat(),
        "dtick": step * 3_600_000,
        "tickformat": "%H:%M<br>%d %b" if step < 24 else "%d %b",
    }


def time_series(days: list[dict]) -> dict[str, Any]:
    x = [row["day"] for row in days]
    series = [
        ("sent", _("Sent")),
        ("delivered", _("Delivered")),
        ("opened_unique", _("Opened")),
        ("clicked_unique", _("Clicked")),
    ]
    return figure(
        *[
            go.Scatter(name=label, x=x, y=[row[key] for row in days], mode="lines+markers", line={"color": COLOURS[n]})
            for n, (key, label) in enumerate(series)
        ],
        layout={"hovermode": "x unified"},
    )


def funnel(totals: dict) -> dict[str, Any]:
    stages = [
        (_("Sent"), totals["sent"]),
        (_("Delivered"), totals["delivered"]),
        (_("Opened"), totals["opened_unique"]),
        (_("Clicked"), totals["clicked_unique"]),
        (_("Converted"), totals["conversions"]),
    ]
    return figure(
        go.Funnel(
            y=[label for label, _n in stages], x=[n for _label, n in stages], textinfo="value+percent initial", marker={"color": COLOURS[0]}
        ),
        layout={"margin": {"l": 90, "r": 10, "t": 10, "b": 20}},
    )


def channel_mix(by_channel: list[dict]) -> dict[str, Any]:
    return figure(
        go.Pie(
            labels=[row["channel"] or _("unknown") for row in by_channel],
            values=[row["sent"] for row in by_channel],
            hole=0.5,
            marker={"colors": COLOURS},
            sort=False,
        )
    )


def opens_heatmap(grid: list[list[int]]) -> dict[str, Any]:
    return figure(
        go.Heatmap(
            z=grid, x=[f"{hour:02d}" for hour in range(24)], y=[str(day) for day in WEEKDAYS], colorscale="Blues", hoverongaps=False
        ),
        layout={"yaxis": {"autorange": "reversed"}, "margin": {"l": 50, "r": 10, "t": 10, "b": 40}},
    )


def revenue_series(days: list[dict]) -> dict[str, Any]:
    return figure(
        go.Bar(name=_("Revenue"), x=[row["day"] for row in days], y=[float(row["revenue"]) for row in days], marker_color=COLOURS[1])
    )


CHARTS = ("timeseries", "funnel", "channels", "heatmap", "revenue")


def build(name: str, filters: queries.Filters) -> dict[str, Any]:
    """One named chart for these filters (the chart endpoints and the page use this)."""
    if name == "timeseries":
        return time_series(queries.per_day(filters))
    if name == "funnel":
        return funnel(queries.totals(filters))
    if name == "channels":
        return channel_mix(queries.breakdown(filters, by="channel"))
    if name == "heatmap":
        return opens_heatmap(queries.opens_heat(filters))
    if name == "revenue":
        return revenue_series(queries.per_day(filters))
    raise KeyError(name)


# --- The campaign report -------------------------------------------------------------
def figure_json(figure) -> dict:
    """A plotly figure as plain JSON data, drawn by static/mailroom/charts.js."""
    return json.loads(plotly.io.to_json(figure, validate=False))


def campaign_report_figures(report: dict, *, timeline: list[dict]) -> dict[str, dict]:
    """A campaign report's plotly figures by name, in the active language's number format:
    the funnel, the A/B variants' rates, and opens and clicks per hour (`timeline`, rows of
    hour, kind and n as `campaigns.queries.engagement_timeline` gives them)."""
    layout = {
        "margin": {"l": 40, "r": 10, "t": 40, "b": 40},
        "height": 320,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "separators": separators(),
    }
    steps = [
        ("sent", _("Sent")),
        ("delivered", _("Delivered")),
        ("opens", _("Opens")),
        ("clicks", _("Clicks")),
        ("conversions", _("Conversions")),
    ]
    funnel = go.Figure(go.Bar(x=[str(label) for _key, label in steps], y=[report[key] for key, _label in steps], marker_color="#0284c7"))
    funnel.update_layout(title=str(_("Funnel")), **layout)
    figures = {"funnel": figure_json(funnel)}
    if report["variants"]:
        variants = go.Figure(
            [
                go.Bar(
                    name=str(_("Open rate %")), x=[v["label"] for v in report["variants"]], y=[v["open_rate"] for v in report["variants"]]
                ),
                go.Bar(
                    name=str(_("Click rate %")), x=[v["label"] for v in report["variants"]], y=[v["click_rate"] for v in report["variants"]]
                ),
            ]
        )
        variants.update_layout(title=str(_("Variants")), barmode="group", **layout)
        figures["variants"] = figure_json(variants)
    if timeline:
        # Local wall-clock hours (plotly ignores offsets) on an axis of whole hours.
        hours = {row["hour"]: timezone.localtime(row["hour"]).replace(tzinfo=None) for row in timeline}
        series = go.Figure()
        for kind, label in (("opened", _("Opens")), ("clicked", _("Clicks"))):
            rows = [row for row in timeline if row["kind"] == kind]
            series.add_trace(
                go.Scatter(
                    name=str(label), x=[hours[row["hour"]].isoformat() for row in rows], y=[row["n"] for row in rows], mode="lines+markers"
                )
            )
        series.update_layout(title=str(_("Engagement per hour")), xaxis=hourly_axis(hours.values()), **layout)
        figures["timeline"] = figure_json(series)
    return figures


CAMPAIGN_REPORT_TITLES = {
    "funnel": gettext_lazy("Funnel"),
    "variants": gettext_lazy("Variants"),
    "timeline": gettext_lazy("Engagement per hour"),
}


def campaign_report_cards(figures: dict[str, dict]) -> tuple[list[dict], dict[str, dict]]:
    """(one card per chart, with its empty state; the figures worth drawing)."""
    cards = [{"name": name, "title": CAMPAIGN_REPORT_TITLES[name], "empty": is_empty(fig)} for name, fig in figures.items()]
    return cards, {card["name"]: figures[card["name"]] for card in cards if not card["empty"]}
