"""Plotly figures the tabs show: trajectory curves, interpolation distances, the latent map."""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

TEMPLATE = "plotly_white"
CHANGED_COLOR = "#f59e0b"
PALETTE = ["#94a3b8", "#60a5fa", "#a78bfa", "#34d399", "#f472b6", "#fbbf24"]
OVERLAY_COLORS = {"your texts": "#dc2626", "generated samples": "#16a34a", "interpolation path": "#2563eb",
                  "denoising trajectory": "#ea580c", "variations": "#9333ea", "infill variants": "#0891b2"}


def hover(text: str, width: int = 70, max_lines: int = 6) -> str:
    """Escape and wrap a text for a plotly hover label."""
    lines = textwrap.wrap(html.escape(text), width) or ["(empty)"]
    if len(lines) > max_lines:
        lines = lines[:max_lines] + ["…"]
    return "<br>".join(lines)


def trajectory_figure(steps: Sequence[int], changed: Sequence[int], sigmas: Sequence[float],
                      distance_to_final: Sequence[float] | None, total_steps: int,
                      marker: int | None = None, chunk_changes: Sequence[Sequence[int]] | None = None) -> go.Figure:
    """Per-step quantities of one denoising run (steps numbered from 1, as the captions count);
    ``distance_to_final`` is known once the run ends. ``chunk_changes`` (per step, tokens changed per chunk;
    chunk-local checkpoints) adds a heat strip of which chunks changed when."""
    titles = ["x0 estimate: distance to the final latent (relative L2)", "tokens changed since the previous step",
              "noise level σ(t) of the tan-d schedule"]
    if chunk_changes is not None:
        titles.insert(2, "tokens changed per chunk (each latent's span)")
    rows = len(titles)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08 if rows == 3 else 0.06,
                        subplot_titles=titles)
    if chunk_changes is not None:
        per_chunk = np.array(chunk_changes, dtype=float).reshape(len(steps), -1).T     # (chunks, steps)
        fig.add_trace(go.Heatmap(x=list(steps), y=list(range(per_chunk.shape[0])), z=per_chunk.tolist(),
                                 colorscale=[[0, "#ffffff"], [1, CHANGED_COLOR]], zmin=0, showscale=False,
                                 name="chunks", hovertemplate="step %{x}, chunk %{y}: %{z} changed<extra></extra>"),
                      row=3, col=1)
        fig.update_yaxes(title_text="chunk", autorange="reversed", dtick=1, row=3, col=1)
    if distance_to_final is not None:
        fig.add_trace(go.Scatter(x=list(steps), y=list(distance_to_final), mode="lines+markers",
                                 marker_size=4, name="distance"), row=1, col=1)
    else:
        fig.add_annotation(text="shown when the run ends (the final latent is not known yet)", showarrow=False,
                           xref="x domain", yref="y domain", x=0.5, y=0.5, row=1, col=1)
    fig.add_trace(go.Bar(x=list(steps), y=list(changed), marker_color=CHANGED_COLOR, name="changed"), row=2, col=1)
    fig.add_trace(go.Scatter(x=list(steps), y=list(sigmas), mode="lines", name="σ(t)"), row=rows, col=1)
    if marker is not None:
        fig.add_vline(x=marker, line_dash="dot", line_color="#475569")
    fig.update_xaxes(range=[0.5, total_steps + 0.5])
    fig.update_xaxes(title_text="step", row=rows, col=1)
    fig.update_layout(template=TEMPLATE, height=560 if rows == 3 else 720, showlegend=False,
                      margin=dict(l=50, r=20, t=40, b=40))
    return fig


def interpolation_figure(weights: Sequence[float], to_a: Sequence[float], to_b: Sequence[float],
                         texts: Sequence[str]) -> go.Figure:
    """Distance of every path point's latent to the two ends, in units of the ends' distance."""
    fig = go.Figure()
    labels = [hover(t) for t in texts]
    for name, values in (("distance to text A", to_a), ("distance to text B", to_b)):
        fig.add_trace(go.Scatter(x=list(weights), y=list(values), mode="lines+markers", name=name,
                                 hovertext=labels, hoverinfo="text+y"))
    fig.update_layout(template=TEMPLATE, height=360, xaxis_title="position on the path (0 = A, 1 = B)",
                      yaxis_title="‖z − z_end‖ / ‖z_A − z_B‖", margin=dict(l=50, r=20, t=30, b=40),
                      legend=dict(orientation="h", x=1.0, xanchor="right", y=1.02, yanchor="bottom"))
    return fig


@dataclass
class Overlay:
    """User points drawn over the reference map."""

    name: str                 # legend entry, one of OVERLAY_COLORS' keys
    coords: np.ndarray        # (K, 2)
    texts: list[str]
    path: bool = False        # connect the points in order (interpolation, trajectory)


def latent_map_figure(coords: np.ndarray, texts: Sequence[str], sources: Sequence[str],
                      overlays: Sequence[Overlay] = ()) -> go.Figure:
    """The reference set's 2-D UMAP, one trace per source, with overlays on top."""
    fig = go.Figure()
    for k, source in enumerate(sorted(set(sources))):
        idx = [i for i, s in enumerate(sources) if s == source]
        fig.add_trace(go.Scattergl(x=coords[idx, 0], y=coords[idx, 1], mode="markers", name=source,
                                   marker=dict(size=6, color=PALETTE[k % len(PALETTE)], opacity=0.7),
                                   hovertext=[hover(texts[i]) for i in idx], hoverinfo="text"))
    for overlay in overlays:
        color = OVERLAY_COLORS.get(overlay.name, "#111827")
        fig.add_trace(go.Scatter(
            x=overlay.coords[:, 0], y=overlay.coords[:, 1], name=overlay.name,
            mode="lines+markers" if overlay.path else "markers",
            marker=dict(size=11, color=color, symbol="diamond", line=dict(width=1, color="white")),
            line=dict(color=color, width=2), hovertext=[hover(t) for t in overlay.texts], hoverinfo="text"))
        if overlay.path and len(overlay.texts) > 1:
            for i, label in ((0, "start"), (len(overlay.texts) - 1, "end")):
                fig.add_annotation(x=overlay.coords[i, 0], y=overlay.coords[i, 1], text=label, showarrow=True,
                                   arrowhead=2, ax=20, ay=-20, font=dict(color=color))
    fig.update_layout(template=TEMPLATE, height=620, xaxis=dict(showticklabels=False, title="UMAP 1"),
                      yaxis=dict(showticklabels=False, title="UMAP 2"), margin=dict(l=30, r=20, t=30, b=30),
                      legend=dict(orientation="h", y=-0.08), hoverlabel=dict(align="left"))
    return fig


def message_figure(message: str) -> go.Figure:
    """An empty figure that says why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(text=hover(message, 90, 12), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(template=TEMPLATE, height=300, xaxis_visible=False, yaxis_visible=False)
    return fig
