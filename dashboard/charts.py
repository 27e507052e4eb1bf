"""Plotly figures, always built from small aggregates (never from raw rows)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboard.labels import label
from dashboard.zones import BANDS
from tasks.ingest.contract import PROGRESS_STATUSES

STATUS_COLOURS = dict(zip(PROGRESS_STATUSES, ("#2e7d32", "#f9a825", "#ef6c00", "#c62828"), strict=True))
BAND_COLOURS = dict(zip(BANDS, ("#2e7d32", "#f9a825", "#ef6c00", "#c62828", "#9e9e9e"), strict=True))
HEIGHT = 320


def _layout(fig: go.Figure, title: str, height: int = HEIGHT, **kwargs: object) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.2},
        **kwargs,
    )
    return fig


def counts_bar(
    counts: pl.DataFrame, column: str, order: tuple[str, ...], colours: dict[str, str], title: str
) -> go.Figure:
    """Households per category, in the category's natural order."""
    found = dict(counts.select(column, "households").iter_rows())
    names = [c for c in order if c in found] + sorted(k for k in found if k not in order and k is not None)
    fig = go.Figure(
        go.Bar(
            x=names,
            y=[found[n] for n in names],
            marker_color=[colours.get(n, "#607d8b") for n in names],
            text=[f"{found[n]:,}" for n in names],
            textposition="auto",
        )
    )
    return _layout(fig, title, yaxis_title=label("households"), showlegend=False)


def stacked_by(
    frame: pl.DataFrame,
    by: str,
    stack: str,
    order: tuple[str, ...],
    colours: dict[str, str],
    title: str,
    height: int = HEIGHT,
) -> go.Figure:
    """Households per `by`, stacked by `stack` (e.g. status per district)."""
    totals = frame.group_by(by).agg(pl.col("households").sum()).sort("households", descending=True)
    groups = totals[by].to_list()
    fig = go.Figure()
    for value in [v for v in order if v in set(frame[stack].to_list())]:
        part = dict(
            frame.filter(pl.col(stack) == value).group_by(by).agg(pl.col("households").sum()).iter_rows()
        )
        fig.add_bar(name=value, x=groups, y=[part.get(g, 0) for g in groups], marker_color=colours.get(value))
    return _layout(fig, title, height, barmode="stack", yaxis_title=label("households"))


def share_bar(frame: pl.DataFrame, by: str, title: str, top: int = 20) -> go.Figure:
    """Share vulnerable per group (the `top` largest groups), with household counts on hover."""
    part = frame.head(top).sort("share_vulnerable")
    fig = go.Figure(
        go.Bar(
            x=part["share_vulnerable"].to_list(),
            y=part[by].to_list(),
            orientation="h",
            marker_color="#c62828",
            customdata=part["households"].to_list(),
            hovertemplate="%{y}: %{x:.0%} of %{customdata:,} households<extra></extra>",
        )
    )
    return _layout(
        fig,
        title,
        max(HEIGHT, 22 * part.height + 80),
        xaxis_tickformat=".0%",
        xaxis_title=label("share_vulnerable"),
        showlegend=False,
    )


def trend(frame: pl.DataFrame, x: str, title: str) -> go.Figure:
    """Households (bars) and share vulnerable (line, right axis) over `x`."""
    fig = go.Figure()
    xs = frame[x].to_list()
    fig.add_bar(x=xs, y=frame["households"].to_list(), name=label("households"), marker_color="#90a4ae")
    fig.add_scatter(
        x=xs,
        y=frame["share_vulnerable"].to_list(),
        name=label("share_vulnerable"),
        yaxis="y2",
        mode="lines+markers",
        line={"color": "#c62828"},
    )
    return _layout(
        fig,
        title,
        yaxis={"title": label("households")},
        yaxis2={
            "title": label("share_vulnerable"),
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "rangemode": "tozero",
        },
    )


def quality_trend(frame: pl.DataFrame) -> go.Figure:
    """Pass rate and completeness per ingestion, in the order they were received."""
    fig = go.Figure()
    xs = frame["received_at"].to_list()
    fig.add_scatter(
        x=xs,
        y=frame["pass_rate"].to_list(),
        name="Pass rate",
        mode="lines+markers",
        text=frame["ingestion_id"].to_list(),
    )
    fig.add_scatter(
        x=xs,
        y=frame["completeness"].to_list(),
        name="Completeness",
        mode="lines+markers",
        text=frame["ingestion_id"].to_list(),
    )
    return _layout(
        fig, "Pass rate and completeness per ingestion", yaxis_tickformat=".0%", yaxis_range=[0, 1.02]
    )


def horizontal(
    frame: pl.DataFrame, name: str, value: str, title: str, colour: str = "#455a64", fmt: str = ","
) -> go.Figure:
    """A horizontal bar per row (largest on top)."""
    part = frame.sort(value)
    fig = go.Figure(
        go.Bar(
            x=part[value].to_list(),
            y=part[name].to_list(),
            orientation="h",
            marker_color=colour,
            hovertemplate=f"%{{y}}: %{{x:{fmt}}}<extra></extra>",
        )
    )
    return _layout(fig, title, max(HEIGHT, 22 * part.height + 80), showlegend=False)


def district_metrics(frame: pl.DataFrame, metrics: tuple[str, ...]) -> go.Figure:
    """Grouped bars of model metrics per district."""
    fig = go.Figure()
    for metric in metrics:
        fig.add_bar(name=metric, x=frame["district"].to_list(), y=frame[metric].to_list())
    return _layout(fig, "Per district (village-grouped CV)", barmode="group", yaxis_range=[0, 1])


def transition_heatmap(
    cells: pl.DataFrame, title: str, axis_from: str, axis_to: str, hidden: str
) -> go.Figure:
    """Households moving from each row to each column, coloured by the row's share; `hidden` in suppressed cells.

    `cells` is a suppressed `tasks.ingest.progress.matrix` (from, to, households, share): the diagonal is
    who stayed, cells right of it moved to a later (better) category when the order is worst first.
    """
    names = list(dict.fromkeys(cells["from"].to_list()))
    found = {(f, t): (n, s) for f, t, n, s in cells.select("from", "to", "households", "share").iter_rows()}
    z = [[found.get((f, t), (None, None))[1] for t in names] for f in names]
    shown = [
        [
            hidden
            if found.get((f, t), (None, None))[0] is None
            else f"{found[(f, t)][0]:,}<br>{found[(f, t)][1]:.0%}"
            for t in names
        ]
        for f in names
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            text=shown,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate=f"{axis_from}: %{{y}}<br>{axis_to}: %{{x}}<br>%{{text}}<extra></extra>",
        )
    )
    wrapped = [n.replace(" ", "<br>") for n in names]  # "Severely Struggling" in two lines, never slanted
    fig = _layout(
        fig,
        title,
        HEIGHT + 80,
        xaxis={"title": axis_to, "side": "top", "tickvals": names, "ticktext": wrapped, "tickangle": 0},
        yaxis={"title": axis_from, "autorange": "reversed", "tickvals": names, "ticktext": wrapped},
    )
    # the column axis sits on top, under the title: room for both
    return fig.update_layout(margin={"t": 120}, title={"y": 0.98, "yanchor": "top"})


def moved_bars(frame: pl.DataFrame, name: str, title: str) -> go.Figure:
    """Per place: share that moved out of vulnerability (right) and share that fell back (left), counts on hover.

    Suppressed cells (null) draw no bar.
    """
    part = frame.reverse()
    fig = go.Figure()
    for column, sign, colour, label_name in (
        ("moved_out", 1, "#2e7d32", "moved_out"),
        ("fell_back", -1, "#c62828", "fell_back"),
    ):
        shares = part[f"{column}_share"].to_list()
        fig.add_bar(
            name=label(label_name),
            x=[None if s is None else sign * s for s in shares],
            y=part[name].to_list(),
            orientation="h",
            marker_color=colour,
            customdata=list(zip(part[column].to_list(), part["both"].to_list(), strict=True)),
            hovertemplate="%{y}: %{customdata[0]:,} of %{customdata[1]:,} households<extra></extra>",
        )
    return _layout(
        fig,
        title,
        40 * part.height + 140 if part.height < 8 else 22 * part.height + 120,
        barmode="relative",
        bargap=0.35,
        xaxis={"tickformat": ".0%", "title": f"← {label('fell_back')} · {label('moved_out')} →"},
    )
