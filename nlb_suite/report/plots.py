"""Matplotlib (Agg) figures of the report, returned as small inline SVG strings."""

from __future__ import annotations

import io
import math
import re
from typing import Optional

import numpy as np

from .analysis import Decoding, PsthPanels, SingleTrial, SpeedTp, Trajectories
from .build import CEILING_COLOR, GroupData, RunData
from .paired import CEILING_METRICS

TRUTH_STYLE = {"color": "#555555", "linestyle": (0, (4, 2)), "linewidth": 1.2}
DATA_STYLE = {"color": "black", "linewidth": 2.2, "alpha": 0.35}
WIDTH_IN = 10.0  # figures are drawn at this width and scale to the page


def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 9.5,
        "axes.labelsize": 9, "legend.fontsize": 8, "axes.spines.top": False, "axes.spines.right": False,
        "path.simplify": True, "path.simplify_threshold": 0.5, "figure.dpi": 100,
    })
    return plt


def to_svg(fig, name: str) -> str:
    """Serialise a figure to an <svg> element (no XML prolog, fixed ids, scales with its container)."""
    plt = _mpl()
    plt.rcParams["svg.hashsalt"] = name
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    width = re.search(r'<svg[^>]*? width="([\d.]+)pt"', svg)
    max_px = f"max-width:{float(width.group(1)) * 4 / 3:.0f}px" if width else ""
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', rf'<svg\1 style="{max_px}"', svg, count=1)
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    svg = re.sub(r'\s*xmlns:(dc|cc|rdf)="[^"]*"', "", svg)
    return svg.replace("<svg", f'<svg role="img" class="plot" data-plot="{name}"', 1)


def _legend(fig, handles=None, labels=None, ncol: Optional[int] = None) -> None:
    """One legend for the whole figure, below the panels."""
    if handles is None:
        handles, labels = [], []
        for ax in fig.axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels and not lab.startswith("_"):
                    handles.append(h)
                    labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol or min(len(labels), 4), frameon=False)


# ----- metrics -------------------------------------------------------------------------------------

def metric_bars(group: GroupData) -> Optional[str]:
    """One panel per metric: value and 95 % interval of every run, the true rates' score (dotted where it is
    a ceiling: co-bps, fp-bps) and published test-phase values."""
    names = group.metric_names
    if not names:
        return None
    plt = _mpl()
    runs = [r for r in group.runs if r.record.metrics]
    pub = [p for p in group.published if any(m in p.metrics for m in names)]
    n_rows = len(runs) + len(pub)
    fig, axes = plt.subplots(1, len(names), figsize=(WIDTH_IN, 0.9 + 0.32 * n_rows + 0.5),
                             layout="constrained", squeeze=False)
    for ax, metric in zip(axes[0], names):
        y = np.arange(n_rows)[::-1]
        for yi, run in zip(y, runs):
            v = run.record.metrics.get(metric, math.nan)
            iv = (run.record.intervals or {}).get(metric)
            err = None if not iv else [[max(v - iv[0], 0)], [max(iv[1] - v, 0)]]
            ax.barh(yi, v, color=run.color, alpha=0.85, height=0.7, label=run.label)
            if err is not None and np.all(np.isfinite(err)):
                ax.errorbar(v, yi, xerr=err, color="black", capsize=3, linewidth=1, label="95% bootstrap interval")
        for yi, p in zip(y[len(runs):], pub):
            if metric in p.metrics:
                ax.barh(yi, p.metrics[metric], color="white", edgecolor="#888888", hatch="///", height=0.7,
                        label="published (test phase)")
        if group.ceiling and metric in group.ceiling.metrics:
            ceiling = metric in CEILING_METRICS  # a ceiling only for the spike-prediction metrics
            ax.axvline(group.ceiling.metrics[metric], color=CEILING_COLOR, linestyle=":" if ceiling else "--",
                       linewidth=1.5, label="true rates (ceiling)" if ceiling else "true rates (not a ceiling)")
        ax.set_yticks(y, [r.label for r in runs] + [f"{p.model} (published, test phase)" for p in pub])
        if ax is not axes[0][0]:
            ax.set_yticklabels([])
        ax.axvline(0, color="#999999", linewidth=0.6)
        ax.set_title(metric)
        ax.set_xlabel(_metric_unit(metric))
    _legend(fig)
    return to_svg(fig, f"{group.anchor}-metrics")


def _metric_unit(metric: str) -> str:
    return {"co-bps": "bits per spike", "fp-bps": "bits per spike", "vel R2": "R² (fraction of variance)",
            "psth R2": "R² (fraction of variance)", "tp corr": "Pearson r"}.get(metric, metric)


def per_neuron(group: GroupData) -> Optional[str]:
    """Per-neuron co-bps of each run, sorted: are gains broad or carried by a few neurons?"""
    runs = [r for r in group.runs if r.per_neuron is not None and len(r.per_neuron)]
    if not runs:
        return None
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.6, 3.0), layout="constrained")
    for run in runs:
        v = np.sort(run.per_neuron[np.isfinite(run.per_neuron)])[::-1]
        ax.plot(np.arange(1, len(v) + 1), v, color=run.color, marker="o", markersize=2.5, linewidth=1.2,
                label=f"{run.label} (median {np.median(v):.3f})")
    ax.axhline(0, color="#999999", linewidth=0.6)
    ax.set_xlabel("held-out neuron, ranked by its co-bps")
    ax.set_ylabel("co-bps of the neuron (bits per spike)")
    ax.set_title("Per-neuron co-smoothing bits per spike (eval trials)")
    ax.legend(frameon=False, loc="upper right")
    return to_svg(fig, f"{group.anchor}-per-neuron")


# ----- data plots ----------------------------------------------------------------------------------

def _run_colors(group: GroupData) -> dict[str, str]:
    return {r.label: r.color for r in group.runs}


def psth(group: GroupData, p: PsthPanels) -> str:
    """Grid of neurons (rows) x conditions (columns): data PSTH, each model, the truth."""
    plt = _mpl()
    colors = _run_colors(group)
    n_r, n_c = len(p.neurons), len(p.conds)
    fig, axes = plt.subplots(n_r, n_c, figsize=(WIDTH_IN, 1.0 + 1.7 * n_r), layout="constrained",
                             squeeze=False, sharex=True)
    for i in range(n_r):
        for j in range(n_c):
            ax = axes[i][j]
            ax.plot(p.time, p.data[j, :, i], label=p.data_label, **DATA_STYLE)
            for label, arr in p.models.items():
                ax.plot(p.time, arr[j, :, i], color=colors.get(label, "C0"), linewidth=1.1, label=label)
            if p.truth is not None:
                ax.plot(p.time, p.truth[j, :, i], label="true rate (synthetic)", **TRUTH_STYLE)
            if i == 0:
                ax.set_title(_wrap(p.conds[j]), fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{p.neurons[i]}\nrate (spikes/s)")
            if i == n_r - 1:
                ax.set_xlabel(p.time_label)
            ax.set_ylim(bottom=0)
    _legend(fig, ncol=3)
    return to_svg(fig, f"{group.anchor}-psth")


def _wrap(text: str, width: int = 28) -> str:
    parts, line, out = text.split(", "), "", []
    for part in parts:
        if line and len(line) + len(part) + 2 > width:
            out.append(line)
            line = part
        else:
            line = f"{line}, {part}" if line else part
    out.append(line)
    return "\n".join(out)


def single_trial(group: GroupData, s: SingleTrial) -> str:
    """Rates of a few neurons on one eval trial, with that trial's spikes as ticks."""
    plt = _mpl()
    colors = _run_colors(group)
    n = len(s.neurons)
    fig, axes = plt.subplots(1, n, figsize=(WIDTH_IN, 3.0), layout="constrained", squeeze=False)
    dt = s.time[1] - s.time[0] if len(s.time) > 1 else 1
    for k, ax in enumerate(axes[0]):
        top = max([np.nanmax(a[:, k]) for a in s.models.values()] +
                  ([np.nanmax(s.truth[:, k])] if s.truth is not None else []) + [1.0])
        counts = s.spikes[:, k]
        scored = ~np.isnan(counts)
        if not scored.all():
            ax.fill_between(s.time, 0, top * 1.15, where=~scored, step="post", color="#eeeeee",
                            label="not scored (outside the eval window)")
        hit = np.flatnonzero(np.nan_to_num(counts) > 0)
        ax.vlines(s.time[hit] + dt / 2, -0.16 * top, -0.04 * top, color="black", linewidth=0.9,
                  label=f"recorded spikes ({s.kind}, one tick per bin with spikes)")
        for label, arr in s.models.items():
            ax.plot(s.time, arr[:, k], color=colors.get(label, "C0"), linewidth=1.2, label=label)
        if s.truth is not None:
            ax.plot(s.time, s.truth[:, k], label="true rate (synthetic)", **TRUTH_STYLE)
        ax.set_ylim(-0.2 * top, top * 1.15)
        ax.set_title(f"eval trial {s.trial}, {s.neurons[k]}")
        ax.set_xlabel(s.time_label)
        if k == 0:
            ax.set_ylabel("rate (spikes/s)")
    _legend(fig, ncol=3)
    return to_svg(fig, f"{group.anchor}-single-trial")


def _cond_colors(n: int) -> list:
    plt = _mpl()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def trajectories(group: GroupData, tr: Trajectories) -> str:
    """Each model's rates in its own top two PCs, one line per condition, dot at the window start."""
    plt = _mpl()
    labels = list(tr.models)
    n = len(labels)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH_IN, 0.8 + 2.6 * rows), layout="constrained",
                             squeeze=False)
    colors = _cond_colors(len(tr.names))
    for ax, label in zip(axes.flat, labels):
        for c, traj in enumerate(tr.models[label]):
            ax.plot(traj[:, 0], traj[:, 1], color=colors[c], linewidth=1.1, label=tr.names[c])
            ax.plot(traj[0, 0], traj[0, 1], "o", color=colors[c], markersize=3.5)
        ax.set_title(f"{label} (PC1+2: {100 * tr.variance[label]:.0f}% of variance)")
        ax.set_xlabel("PC 1 (spikes/s)")
        ax.set_ylabel("PC 2 (spikes/s)")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    what = "eval trial" if tr.by_trial else "condition"
    _legend(fig, ncol=4)
    fig.suptitle(f"Top-2 principal components of each model's rates, one line per {what} (dot: window start)",
                 fontsize=9.5)
    return to_svg(fig, f"{group.anchor}-trajectories")


def decoding(group: GroupData, d: Decoding) -> str:
    """Recorded velocity and each model's ridge-decoded velocity on a few eval trials (x and y)."""
    plt = _mpl()
    colors = _run_colors(group)
    n = len(d.trials)
    fig, axes = plt.subplots(2, n, figsize=(WIDTH_IN, 4.4), layout="constrained", squeeze=False, sharey="row")
    for j, trial in enumerate(d.trials):
        for i, comp in enumerate("xy"):
            ax = axes[i][j]
            ax.plot(d.time[j], d.true[j][:, i], label="recorded", **DATA_STYLE)
            for label, preds in d.models.items():
                ax.plot(d.time[j], preds[j][:, i], color=colors.get(label, "C0"), linewidth=1.1,
                        label=f"{label} (vel R² {d.r2[label]:.3f})")
            if i == 0:
                ax.set_title(f"eval trial {trial}")
            if j == 0:
                ax.set_ylabel(f"{d.field} {comp} ({d.units})")
            if i == 1:
                ax.set_xlabel(d.time_label)
    _legend(fig, ncol=3)
    return to_svg(fig, f"{group.anchor}-decoding")


def speed_tp(group: GroupData, s: SpeedTp) -> str:
    """dmfc_rsg: neural speed vs produced interval per trial, coloured by condition, one panel per model."""
    plt = _mpl()
    labels = list(s.models)
    cols = min(len(labels), 4)
    rows = -(-len(labels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH_IN, 0.9 + 2.7 * rows), layout="constrained",
                             squeeze=False)
    colors = _cond_colors(len(s.cond_names))
    for ax, label in zip(axes.flat, labels):
        for c, name in enumerate(s.cond_names):
            m = s.cond == c
            ax.scatter(s.models[label][m], s.tp[m], s=10, color=colors[c], label=name)
        ax.set_title(f"{label} (tp corr {s.corr[label]:.3f})")
        ax.set_xlabel("neural speed, set→go (spikes/s per bin)")
        ax.set_ylabel("produced interval tp (ms)")
    for ax in list(axes.flat)[len(labels):]:
        ax.set_visible(False)
    _legend(fig, ncol=3)
    return to_svg(fig, f"{group.anchor}-speed-tp")


def curves(group: GroupData, runs: list[RunData]) -> str:
    """Training curves (every loss column of curves.csv against epoch/step), one panel per run."""
    plt = _mpl()
    cols = min(len(runs), 3)
    rows = -(-len(runs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH_IN, 0.8 + 2.6 * rows), layout="constrained",
                             squeeze=False)
    for ax, run in zip(axes.flat, runs):
        data = run.curves
        x_name = next(iter(data))
        x = data[x_name]
        ys = [(k, v) for k, v in data.items() if k != x_name]
        for k, v in ys:
            ok = np.isfinite(x) & np.isfinite(v)
            ax.plot(x[ok], v[ok], linewidth=1.2, label=f"{run.label}: {k}")
        finite = np.concatenate([v[np.isfinite(v)] for _, v in ys])
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
            ax.set_yscale("log")
        ax.set_title(run.label)
        ax.set_xlabel(x_name)
        ax.set_ylabel("loss (as logged)")
        ax.legend(frameon=False, fontsize=7)
    for ax in list(axes.flat)[len(runs):]:
        ax.set_visible(False)
    return to_svg(fig, f"{group.anchor}-curves")
