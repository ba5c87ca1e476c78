"""The report's sections: summary tables, per-dataset plots with reading guides, provenance."""

from __future__ import annotations

import datetime as _dt
import logging
import warnings
from typing import Optional

import yaml

from ..errors import NLBInputError
from ..internal_validation import SELECTION_FIELD
from ..jsonio import dumps_json
from ..sweep.lineage import stretches
from ..table import short
from . import analysis as A
from . import plots as P
from .arm_tables import ArmCell, arm_differences, arm_notes, arm_table
from .build import GroupData, RunData
from .data_sets import Family, family_differences, family_table
from .html import Section, empty, esc, figure, note, table
from .summary import Summary, differences, summarize

log = logging.getLogger("nlb_suite.report")

NO_DATA = "needs the runs' data folder, which could not be used (see the notes above)"


def summary_table(group: GroupData, s: Summary) -> str:
    """The HTML summary table of one group (best values marked, ties shared, references and published rows
    tagged), then each run's paired difference to the top run."""
    headers = ["run"] + s.metrics + s.extra_headers
    rows, classes = [], []
    for row in s.rows:
        swatch = f'<span class="swatch" style="background:{row.color}"></span>' if row.color else ""
        tag = f'<span class="tag">{esc(row.note)}</span>' if row.note else ""
        cells = [f"<td>{swatch}{esc(row.name)}{tag}</td>"]
        for c in row.cells:
            ci = f' <span class="ci">{esc(c.ci_text())}</span>' if c.ci_text() else ""
            mark = f" {c.mark()}" if c.best else ""
            cls = "num best" if c.best else "num"
            cells.append(f'<td class="{cls}">{esc(c.text())}{mark}{ci}</td>')
        cells += [f'<td class="num">{esc(x)}</td>' for x in row.extra]
        rows.append(cells)
        classes.append(row.kind if row.kind != "run" else "")
    notes = "".join(note(n) for n in s.notes)
    d_headers, d_rows = differences(group)
    diffs = ""
    if d_rows:
        diffs = ('<p class="sub">Paired differences to the top run of each metric (value [95% interval]); '
                 '"tie": the interval includes 0, so the eval trials do not resolve the difference. The '
                 'interval holds each fitted model fixed: a fit at another model seed moves by its own noise, '
                 'which it does not include.</p>'
                 + table(d_headers, name_and_numbers(d_rows), [""] * len(d_rows)))
    return table(headers, rows, classes) + diffs + notes + arms_html(group)


def name_and_numbers(rows: list[list[str]]) -> list[list[str]]:
    """HTML cells of text rows whose first cell names the row and the rest are numbers (difference tables)."""
    return [[f"<td>{esc(r[0])}</td>"] + [f'<td class="num">{esc(x)}</td>' for x in r[1:]] for r in rows]


def arms_html(group: GroupData) -> str:
    """The arm tables (one configuration at several model seeds) and their notes; empty without arms."""
    a_headers, a_rows = arm_table(group)
    if not a_rows:
        return ""
    html = ('<p class="sub">Arms: runs of one configuration at several model seeds, each metric the mean over '
            'its fits (SD over fits); ★ marks the top arm and every arm tied with it.</p>'
            + table(a_headers, marked_cells(a_rows), [""] * len(a_rows)))
    ad_headers, ad_rows = arm_differences(group)
    if ad_rows:
        html += ('<p class="sub">Differences to the top arm of each metric (value [95% Welch t interval that adds '
                 'the fits\' spread to the eval trials\']); "tie": the interval includes 0.</p>'
                 + table(ad_headers, name_and_numbers(ad_rows), [""] * len(ad_rows)))
    return html + "".join(note(n) for n in arm_notes(group))


def marked_cells(rows: list[list[ArmCell]]) -> list[list[str]]:
    """HTML cells of rows whose first cell names the row and the rest are numbers with best marks (★, green)."""
    return [[f"<td>{esc(r[0].text)}</td>"]
            + [f'<td class="{"num best" if c.best else "num"}">{esc(c.marked("★"))}</td>' for c in r[1:]]
            for r in rows]


def families_section(families: list[Family], notes: list[str]) -> Optional[Section]:
    """"Means over data sets": per family (one synthetic generator at several data seeds) each configuration's mean
    over the data sets, its differences to the top with t intervals over the sets, and the notes; the notes alone
    where data sets were not pooled; None when there is neither."""
    if not families and not notes:
        return None
    parts = []
    for f in families:
        headers, rows = family_table(f)
        parts.append(f'<h3 id="{esc(f.anchor)}">{esc(f.title)}</h3>')
        parts.append(table(headers, marked_cells(rows), ["reference" if r.reference else "" for r in f.rows]))
        d_headers, d_rows = family_differences(f)
        if d_rows:
            parts.append('<p class="sub">Differences to the top configuration of each metric, mean over data sets '
                         '(value [95% t interval over the sets]); "tie": the interval includes 0.</p>'
                         + table(d_headers, name_and_numbers(d_rows), [""] * len(d_rows)))
        parts += [note(n) for n in f.notes]
    how = ("runs on several synthetic data sets of one generator (data seeds): each configuration's mean over the "
           "data sets, judged with the sets as the units; ★ marks the top configuration and every one tied with it")
    return Section("Means over data sets", "data-sets", "".join(parts + [note(n) for n in notes]), how, level=2)


def summary_section(groups: list[GroupData]) -> Section:
    """All groups' summary tables at the top of the page."""
    parts = []
    for g in groups:
        parts.append(f'<h3 id="summary-{esc(g.anchor)}">{esc(g.title)}</h3>')
        parts.append(summary_table(g, summarize(g)))
    how = ("one row per run; each metric is the value on the eval trials with its 95% bootstrap interval over "
           "eval trials in brackets; ★ and green mark the best run per metric (higher is better, except tp corr: "
           "more negative is better), and '★ tie' every run whose paired difference to it includes 0 (a tie: "
           "not resolved by the eval trials); grey italic rows are references that read the ground truth "
           "(synthetic data: the true rates, a ceiling for co-bps and fp-bps only, and the true PSTH) or published test-phase scores")
    return Section("Summary", "summary", "\n".join(parts), how, level=2)


def _plot(build, *args, caption: str, missing: str) -> str:
    """Draw one plot; a visible note instead when there is nothing to draw or drawing fails."""
    try:
        data = build(*args) if callable(build) else build
    except (NLBInputError, ValueError, IndexError, KeyError) as exc:
        log.warning("report: plot skipped: %s", exc)
        return empty(f"plot not drawn: {exc}")
    if data is None:
        return empty(missing)
    return figure(data, caption)


def _needs_data(group: GroupData) -> str | None:
    if group.tensors is None:
        return NO_DATA
    if not group.models:
        return "no run's submission matches the data, so there are no rates to plot"
    return None


def group_section(group: GroupData) -> Section:
    """One dataset's section: notes, then one sub-section per view."""
    intro = [f'<p class="sub">{len(group.runs)} run(s); data folder <code>{esc(group.data_dir)}</code>'
             + (f" ({esc(group.data_check)})" if group.data_check else "") + "</p>"]
    t = group.tensors
    if t is not None:
        intro.append(f'<p class="sub">{len(t.train_trial_ids)} train and {len(t.eval_trial_ids)} eval trials, '
                     f'{t.eval_spikes_heldin.shape[2]} held-in neurons.</p>')
    intro += [note(n) for n in group.notes]
    intro += [note(f"{r.label}: {n}") for r in group.runs for n in r.notes]
    a = group.anchor
    kids = [
        Section("Metrics", f"{a}-metrics", _metrics_body(group),
                "bars are values on the eval trials, black whiskers their 95% bootstrap intervals, the dotted line "
                "the true rates' score where it is a ceiling (co-bps, fp-bps), dashed where it is not (vel R2, "
                "psth R2: a model can score higher); the lower plot ranks held-out neurons by their own co-bps"),
        Section("Condition-averaged rates (PSTHs)", f"{a}-psth", _psth_body(group),
                "each panel is one condition (column) and one neuron (row); the thick grey line is the data, "
                "coloured lines each model's trial-averaged rates, dashed the true rate; a good model follows "
                "the grey line's shape and scale"),
        Section("Single-trial rates", f"{a}-single", _single_body(group),
                "ticks below zero are the bins of one eval trial in which the neuron spiked; lines are the "
                "rates each model inferred for that trial (held-out neurons are predicted from the others)"),
        Section("Latent trajectories", f"{a}-trajectories", _traj_body(group),
                "each model's rates projected on its own top two principal components, one line per "
                "condition, starting at the dot; well-separated, smooth lines mean condition structure is kept "
                "(axes differ between panels)"),
        Section(_behaviour_title(group), f"{a}-behaviour", _behaviour_body(group), _behaviour_how(group)),
        Section("Training curves", f"{a}-curves", _curves_body(group),
                "loss as logged by each run against epoch or step; flat late curves mean training converged, "
                "a rising validation loss means over-fitting"),
        Section("Provenance", f"{a}-provenance", _provenance_body(group),
                "what produced each run: the resolved config, package versions, data checksums, timings and the "
                "command; the same checksums mean the same data"),
    ]
    return Section(group.title, a, "\n".join(intro), level=2, children=kids)


def _metrics_body(group: GroupData) -> str:
    if not group.has_metrics:
        return empty(f"no metrics: phase {group.phase} has no local target (the held-out data are hidden)")
    bars = _plot(P.metric_bars, group, caption=f"Metrics of every run on {group.title}, with 95% bootstrap "
                 "intervals over eval trials.", missing="no metrics to plot")
    neurons = _plot(P.per_neuron, group, caption="Per-neuron co-bps, sorted; the median is in the legend.",
                    missing="no per_neuron_co_bps.json in the run folders")
    return bars + neurons


def _psth_body(group: GroupData) -> str:
    why = _needs_data(group)
    if why:
        return empty(why)
    if group.cond_index is None:
        return empty(f"{group.dataset} has no trial conditions (continuous reaching), so there are no PSTHs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN-padded bins of front-padded trials
        panels = A.psth_panels(group)
    if panels is None:
        return empty("no condition has eval trials")
    cap = (f"{panels.data_label} vs each model's condition-averaged eval rates; the {len(panels.conds)} "
           f"conditions with the most eval trials and the {len(panels.neurons)} most modulated neurons.")
    return _plot(P.psth, group, panels, caption=cap, missing="")


def _single_body(group: GroupData) -> str:
    why = _needs_data(group)
    if why:
        return empty(why)
    s = A.single_trial(group)
    cap = (f"Eval trial {s.trial} (median spike count), the {len(s.neurons)} {s.kind} neurons that spiked most in it"
           + ("; phase test hides held-out spikes, so held-in neurons are shown" if s.kind == "held-in" else "")
           + ".")
    return _plot(P.single_trial, group, s, caption=cap, missing="")


def _traj_body(group: GroupData) -> str:
    why = _needs_data(group)
    if why:
        return empty(why)
    tr = A.trajectories(group)
    what = ("single eval trials (the dataset has no conditions)" if tr.by_trial else
            f"the {len(tr.names)} conditions with the most eval trials, averaged over their trials")
    return _plot(P.trajectories, group, tr, caption=f"Rates (held-in + held-out neurons) of {what}.", missing="")


def _behaviour_title(group: GroupData) -> str:
    return "Neural speed vs produced interval" if group.dataset == "dmfc_rsg" else "Decoded vs recorded velocity"


def _behaviour_how(group: GroupData) -> str:
    if group.dataset == "dmfc_rsg":
        return ("one dot per eval trial: the model's mean neural speed between set and go against the interval "
                "the animal produced; tp corr averages the per-condition correlations")
    return ("black-grey is the recorded velocity of a few eval trials, coloured lines the velocity a ridge "
            "decoder (fitted on train trials, as for vel R2) reads out of each model's rates")


def _behaviour_body(group: GroupData) -> str:
    why = _needs_data(group)
    if why:
        return empty(why)
    if group.tensors.target is None:
        return empty(f"phase {group.phase}: the eval behaviour is hidden, so decoding cannot be checked")
    if group.dataset == "dmfc_rsg":
        s = A.speed_tp(group)
        return _plot(P.speed_tp, group, s, caption="Neural speed vs tp per eval trial, colour = condition.",
                     missing="no eval trials with behaviour")
    d = A.decoding(group)
    return _plot(P.decoding, group, d, caption=f"Recorded and decoded {d.field} on eval trials "
                 f"{', '.join(map(str, d.trials))}.", missing="")


def _curves_body(group: GroupData) -> str:
    with_curves = [r for r in group.runs if r.curves is not None]
    parts = []
    if with_curves:
        parts.append(_plot(P.curves, group, with_curves, caption="Training curves from curves.csv.", missing=""))
    for r in with_curves:
        if r.record.info.get(SELECTION_FIELD):
            parts.append(note(f"{r.label}: {refit_text(r.record.info[SELECTION_FIELD])}."))
    for r in group.runs:
        if r.curves is None:
            parts.append(empty(f"{r.label}: {r.curves_note}"
                               + (" (this baseline is not trained iteratively)" if r.baseline in
                                  ("oracle", "smoothing") else "")))
    return "\n".join(parts)


def _provenance_body(group: GroupData) -> str:
    cards = [_provenance_card(r) for r in group.runs]
    return f'<div class="prov">{"".join(cards)}</div>'


def _provenance_card(run: RunData) -> str:
    info = run.record.info
    t = info.get("timings") or {}
    mtime = (run.record.path / "run.json").stat().st_mtime
    when = _dt.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M")
    versions = ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())
    machine = ", ".join(f"{k} {v}" for k, v in (info.get("machine") or {}).items())  # CPU kernels move some fits
    shas = "<br>".join(f"{esc(k)}: <code title=\"{esc(v)}\">{esc(v[:16])}…</code>"
                       for k, v in (info.get("data_sha256") or {}).items()) or "–"
    timing = ", ".join(f"{k.replace('_s', '').replace('_', ' ')} {v:.2f}{' ms' if 'ms' in k else ' s'}"
                       for k, v in t.items() if isinstance(v, (int, float)))
    rows = [("folder", f"<code>{esc(run.record.path)}</code>"), ("baseline", esc(run.baseline)),
            ("seed / device", esc(f"{info.get('seed', '–')} / {info.get('device', '–')}")),
            ("trials", esc(f"{info.get('n_train_trials', '–')} train, {info.get('n_eval_trials', '–')} eval")),
            ("finished", esc(when)), ("run time", esc(timing or "–")), ("versions", esc(versions or "–")),
            ("data SHA-256", shas), ("machine", esc(machine or "–")),
            ("command", f"<code>{esc(info.get('command', '–'))}</code>")]
    if info.get("sweep"):
        rows.insert(1, ("tuned by", _sweep_cell(info["sweep"])))
    if info.get(SELECTION_FIELD):
        rows.insert(1, ("refit", esc(refit_text(info[SELECTION_FIELD]))))
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    config = yaml.safe_dump(run.record.config, sort_keys=False) if run.record.config else "(no config.yaml)"
    log_path = run.record.path / "log.txt"
    log_tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-8:]) if log_path.exists() else "(no log.txt)"
    return (f'<div><h4><span class="swatch" style="background:{run.color}"></span>{esc(run.label)}</h4>'
            f"<table>{body}</table><p><strong>config.yaml</strong></p><pre>{esc(config)}</pre>"
            f"<p><strong>log.txt (last lines)</strong></p><pre>{esc(log_tail)}</pre></div>")


def refit_text(selection: dict) -> str:
    """What a `refit: true` run did: the selection fit's choice and score, then the refit (run.json
    `selection_fit`)."""
    fp = selection.get("fp-bps")
    return (f"the selection fit kept epoch {selection.get('kept_epoch', '?')} of {selection.get('epochs_run', '?')} "
            f"(validation co-bps {short(selection.get('co-bps'))}"
            + ("" if fp is None else f", fp-bps {short(fp)}")
            + f" on {selection.get('n_trials', '?')} trials); then trained again on all "
            f"{selection.get('refit_trials', '?')} train trials for {selection.get('refit_epochs', '?')} epochs "
            "(refit_curves.csv); its training curve is the selection fit's")


def _sweep_cell(sweep: dict) -> str:
    """How `nlb-eval sweep` chose this model: the search, the trial, its validation score and, for PBT, the
    lineage (which values trained which epochs)."""
    text = esc(f"nlb-eval sweep: {sweep.get('search', '?')} search, {sweep.get('trials', '?')} trials; trial "
               f"{sweep.get('trial', '?')} chosen on internal validation ({short(sweep.get('valid_best'))}, epoch "
               f"{sweep.get('best_epoch', '?')} of {sweep.get('epochs', '?')}); sweep folder ")
    text += f"<code>{esc(sweep.get('sweepdir', '–'))}</code>"
    lineage = sweep.get("lineage") or []
    if len(lineage) < 2:  # random search, or a PBT model whose values never changed
        return text
    names = list(lineage[0]["config"])
    header = "<tr><th>epochs</th><th>trial</th>" + "".join(f"<th>{esc(n)}</th>" for n in names) + "</tr>"
    rows = "".join(f"<tr><td>{epochs}</td><td>{esc(trial)}</td>"
                   + "".join(f'<td class="num">{esc(short(values.get(n)))}</td>' for n in names) + "</tr>"
                   for epochs, trial, values in stretches(lineage, sweep.get("epochs", "?")))
    return text + f"<br>PBT lineage (the values each stretch of its epochs trained with):<table>{header}{rows}</table>"


def run_json(run: RunData) -> str:
    """run.json of a run as indented text (Markdown provenance)."""
    return dumps_json(run.record.info, indent=1).rstrip()
