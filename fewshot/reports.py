"""JSON, Markdown, HTML and plots from evaluation results.

:func:`write_report` takes the JSON-ready ``metrics`` dictionary that
``fewshot evaluate`` builds (see :func:`fewshot.benchmark.evaluate_embeddings`
for the per-system part) and writes ``metrics.json``, the PNG figures,
``report.md`` and a self-contained ``report.html`` (figures inlined as base64
data URIs). Everything drawn comes from ``metrics``, so a report can be redrawn
from a ``metrics.json`` alone.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

COLORS = {"default": "#1f5fbf", "mfcc": "#9a9a9a", "original": "#d9822b"}
HEADLINE_SIZES = ("3", "10", "all")


def _fig(w, h):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=110, layout="constrained")


def _systems(metrics):
    return {k: v for k, v in metrics["systems"].items() if "closed_set" in v}


def _pct(x, digits=1):
    return "–" if x is None else f"{100 * x:.{digits}f}"


def _acc(cell):
    if cell is None:
        return "–"
    s = _pct(cell["accuracy_mean"])
    return s if cell["n_groups"] == 1 else f"{s} ± {_pct(cell['accuracy_std'])}"


def headline(metrics, *, sizes=HEADLINE_SIZES) -> tuple[list[str], list[list[str]]]:
    """The headline table: mean accuracy (%) ± spread over draws per enrollment
    length and group size, and the verification EER (%)."""
    Ts = [f"{t:g}" for t in metrics["protocol"]["enroll_seconds"]]
    n = metrics["dataset"]["speakers_evaluated"]
    asked = metrics["protocol"]["group_sizes"]
    sizes = [K for K in sizes if K in asked] or asked
    head = ["system"] + [f"{T} s, {'all ' + str(n) if K == 'all' else K + ' people'}" for T in Ts for K in sizes]
    rows = []
    for key, s in metrics["systems"].items():
        if "closed_set" not in s:
            rows.append([s["label"]] + ["skipped"] * (len(head) - 2) + ["–"])
            continue
        rows.append([s["label"]] + [_acc(s["closed_set"].get(T, {}).get(K)) for T in Ts for K in sizes]
                    + [_pct(s["verification"]["eer"])])
    return head + ["EER (%)"], rows


def plot_confusion(rep, path, *, title=""):
    """Counts in the cells, colour by the row-normalised rate, speaker names on both axes."""
    C = np.asarray(rep["confusion"])
    names, k = rep["speakers"], len(rep["speakers"])
    R = C / np.maximum(C.sum(axis=1, keepdims=True), 1)
    side = max(4.2, 0.24 * k + 2.2)
    fig = _fig(side + 0.9, side)
    ax = fig.add_subplot()
    im = ax.imshow(R, cmap="Blues", vmin=0, vmax=1)
    fs = max(6.5, min(10, 300 / k))
    ax.set_xticks(range(k), names, rotation=90, fontsize=fs)
    ax.set_yticks(range(k), names, fontsize=fs)
    for i, j in zip(*np.nonzero(C)):
        ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=fs,
                color="white" if R[i, j] > 0.6 else "black")
    ax.set_xlabel("predicted speaker")
    ax.set_ylabel("true speaker")
    import textwrap

    title = title or f"{k} speakers, accuracy {_pct(rep['accuracy'])} %"
    ax.set_title("\n".join(w for line in title.split("\n") for w in textwrap.wrap(line, int(11 * (side + 0.9)))),
                 fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.6, label="share of the true speaker's pieces")
    fig.savefig(path)


def _x_of(key, n):
    return n if key == "all" else int(key)


def plot_accuracy_vs_group_size(metrics, path):
    """One line per system and enrollment length (dashed: the shortest)."""
    n = metrics["dataset"]["speakers_evaluated"]
    fig = _fig(7.5, 4.6)
    ax = fig.add_subplot()
    Ts = [f"{t:g}" for t in metrics["protocol"]["enroll_seconds"]]
    styles = dict(zip(Ts, ["--", "-", ":", "-."]))
    for key, s in _systems(metrics).items():
        for T in Ts:
            cells = {K: c for K, c in s["closed_set"].get(T, {}).items() if not K.endswith("same_gender")}
            ks = sorted(cells, key=lambda K: _x_of(K, n))
            x = [_x_of(K, n) for K in ks]
            y = np.array([100 * cells[K]["accuracy_mean"] for K in ks])
            ax.plot(x, y, styles.get(T, "-"), marker="o", color=COLORS.get(key, "k"), label=f"{s['label']}, {T} s")
            if key == "default":
                sd = np.array([100 * cells[K]["accuracy_std"] for K in ks])
                ax.fill_between(x, y - sd, np.minimum(y + sd, 100), color=COLORS["default"], alpha=0.08)
    ks = sorted({K for s in _systems(metrics).values() for c in s["closed_set"].values() for K in c
                 if not K.endswith("same_gender")}, key=lambda K: _x_of(K, n))
    ax.set_xscale("log")
    ax.set_xticks([_x_of(K, n) for K in ks], [f"all ({n})" if K == "all" else K for K in ks])
    ax.minorticks_off()
    ax.set_ylim(0, 101)
    ax.set_xlabel("people in the group")
    ax.set_ylabel("accuracy over 5 s test pieces (%)")
    ax.set_title("Accuracy against group size (band: ±1 s.d. over draws, default model)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.savefig(path)


def plot_accuracy_vs_seconds(metrics, path):
    """One panel per system, one line per group size."""
    systems = _systems(metrics)
    n = metrics["dataset"]["speakers_evaluated"]
    fig = _fig(3.6 * len(systems) + 0.6, 4.0)
    axes = fig.subplots(1, len(systems), sharey=True, squeeze=False)[0]
    for ax, (key, s) in zip(axes, systems.items()):
        curve = s["enrollment_curve"]
        for i, K in enumerate(sorted(curve, key=lambda K: _x_of(K, n))):
            Ts = sorted(curve[K], key=float)
            ax.plot([float(T) for T in Ts], [100 * curve[K][T] for T in Ts], marker="o",
                    color=f"C{i}", label=f"all ({n})" if K == "all" else f"{K} people")
        ax.set_title(s["label"], fontsize=10)
        ax.set_xlabel("enrollment speech per person (s)")
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 101)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.savefig(path)


def plot_score_distributions(metrics, path):
    """Target and non-target cosine scores per system, the EER (unknown) threshold marked."""
    systems = _systems(metrics)
    fig = _fig(3.8 * len(systems) + 0.4, 3.6)
    axes = fig.subplots(1, len(systems), squeeze=False)[0]
    for ax, (key, s) in zip(axes, systems.items()):
        v = s["verification"]
        edges = np.array(v["histogram"]["edges"])
        for name, color in (("nontarget", "#c0392b"), ("target", "#27ae60")):
            counts = np.array(v["histogram"][name], float)
            dens = counts / max(counts.sum(), 1) / np.diff(edges)
            ax.stairs(dens, edges, fill=True, alpha=0.35, color=color, label=f"{name}s ({int(counts.sum())})")
        ax.axvline(v["eer_threshold"], color="k", ls="--", lw=1,
                   label=f"threshold {v['eer_threshold']:.3f} (EER {_pct(v['eer'])} %)")
        ax.set_title(s["label"], fontsize=10)
        ax.set_xlabel(f"cosine, {v['enroll_seconds']:g} s centroid vs 5 s piece")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("density")
    fig.savefig(path)


def plot_det(metrics, path):
    """DET curves (probit axes) of every system, the EER point marked."""
    from scipy.stats import norm

    ticks = np.array([0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 40, 60, 80])
    fig = _fig(5.2, 5.0)
    ax = fig.add_subplot()
    for key, s in _systems(metrics).items():
        v = s["verification"]
        far, frr = np.array(v["det"]["far"]), np.array(v["det"]["frr"])
        ok = (far > 0) & (far < 1) & (frr > 0) & (frr < 1)
        ax.plot(norm.ppf(far[ok]), norm.ppf(frr[ok]), color=COLORS.get(key, "k"),
                label=f"{s['label']} (EER {_pct(v['eer'])} %)")
        if 0 < v["eer"] < 1:
            ax.plot(norm.ppf(v["eer"]), norm.ppf(v["eer"]), "o", color=COLORS.get(key, "k"))
    ax.set_xticks(norm.ppf(ticks / 100), [f"{t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks / 100), [f"{t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(0.0001), norm.ppf(0.8))
    ax.set_ylim(norm.ppf(0.001), norm.ppf(0.8))
    ax.plot([-5, 5], [-5, 5], color="0.8", lw=0.8)
    ax.set_xlabel("false accept rate (%)")
    ax.set_ylabel("false reject rate (%)")
    ax.set_title("Verification DET: 15 s enrollment vs 5 s pieces", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.savefig(path)


def draw_figures(metrics, out) -> dict[str, str]:
    """Write every PNG into ``out``; returns ``{name: caption}`` in report order."""
    out = Path(out)
    figs = {}
    plot_accuracy_vs_group_size(metrics, out / "accuracy_vs_group_size.png")
    figs["accuracy_vs_group_size.png"] = "Mean accuracy against group size, per system and enrollment length."
    plot_accuracy_vs_seconds(metrics, out / "accuracy_vs_enroll_seconds.png")
    figs["accuracy_vs_enroll_seconds.png"] = "Mean accuracy against seconds of enrollment speech per person."
    main = metrics["systems"]["default"]
    T = f"{metrics['protocol']['verification_seconds']:g}"
    for T_ in dict.fromkeys([T] + list(main["closed_set"])):
        for K, cell in main["closed_set"][T_].items():
            if T_ != T and K != "all":
                continue
            name = f"confusion_{'all' if K == 'all' else 'k' + K}_{T_}s.png"
            what = "all speakers" if K == "all" else f"representative group of {K.replace('_', ' ')}"
            plot_confusion(cell["representative"], out / name, title=f"{main['label']}: {what}\n{T_} s "
                           f"enrollment, accuracy {_pct(cell['representative']['accuracy'])} %")
            figs[name] = (f"Confusion matrix, {what} ({T_} s enrollment; the group whose accuracy is the "
                          f"median of the draws)" if K != "all" else f"Confusion matrix, {what}, {T_} s enrollment.")
    for key, s in _systems(metrics).items():
        if key != "default" and "all" in s["closed_set"].get(T, {}):
            name = f"confusion_all_{T}s_{key}.png"
            rep = s["closed_set"][T]["all"]["representative"]
            plot_confusion(rep, out / name, title=f"{s['label']}: all speakers\n{T} s "
                           f"enrollment, accuracy {_pct(rep['accuracy'])} %")
            figs[name] = f"Confusion matrix of {s['label']}, all speakers, {T} s enrollment."
    plot_score_distributions(metrics, out / "score_distributions.png")
    figs["score_distributions.png"] = ("Cosine scores of targets and non-targets; dashed: the EER threshold "
                                       "(the unknown threshold).")
    plot_det(metrics, out / "det_curve.png")
    figs["det_curve.png"] = "Detection error trade-off of speaker verification."
    return figs


def blocks(metrics, figs) -> list[tuple]:
    """The report's content as ``(kind, ...)`` blocks, rendered by :func:`to_markdown` and :func:`to_html`."""
    d, p, main = metrics["dataset"], metrics["protocol"], metrics["systems"]["default"]
    T = f"{p['verification_seconds']:g}"
    sysd = _systems(metrics)
    genders = ", ".join(f"{v} {k}" for k, v in sorted(d.get("genders", {}).items()))
    out = [("h1", metrics["title"]),
           ("p", f"Model `{metrics['model_id']}`. Dataset `{d['path']}`: {d['speakers_found']} speakers, "
                 f"{d['speakers_evaluated']} evaluated{f' (gender: {genders})' if genders else ''}, "
                 f"{len(d['left_out'])} left out with fewer than {p['min_test_pieces']} test pieces; "
                 f"{d['test_pieces']} test pieces of {p['piece_s']:g} s. {p['draws']} random groups per size, "
                 f"seed {p['seed']}. Written {metrics['created']} in {metrics['timing_s']['total']:.0f} s."),
           ("h2", "Headline"), ("table", *headline(metrics)),
           ("p", f"Mean accuracy (%) over {p['piece_s']:g} s test pieces ± standard deviation over the random "
                 f"groups (the all-speaker group is a single group). EER: verification of each speaker's "
                 f"{T} s enrollment centroid against every test piece (cosine).")]
    first = next((n for n in figs if n.startswith("confusion_all")), None)
    out += [("img", first, figs[first])] if first else []
    ut = metrics["unknown_threshold"]
    rows = [[K.replace("_", " "), Ts, _pct(o["false_reject_rate"]), _pct(o["false_accept_rate"]),
             _pct(o["open_accuracy"])] for Ts, cells in main["closed_set"].items()
            for K, c in cells.items() if (o := c.get("open_set"))]
    out += [("h2", "Unknown threshold"),
            ("p", f"The product answers \"unknown\" when the cosine similarity of an utterance to the predicted "
                  f"speaker's centroid is below a threshold (`GroupSVC.predict_open`). Chosen on this data at the "
                  f"EER of the verification scores: **{ut['value']:.3f}** (EER {_pct(ut['eer'], 2)} %). "
                  f"Open-set rates at that threshold ({main['label']}; impostors are the test pieces of every "
                  f"speaker outside the group):"),
            ("table", ["group", "enroll (s)", "members rejected (FRR %)", "impostors accepted (FAR %)",
                       "members correct and accepted (%)"], rows)]
    out += [("p", "Impostor acceptance grows with the group: an impostor is scored against the speaker the SVM "
                  "picks among K, usually the best-matching centroid, not against one speaker as in the EER. "
                  "Members are rejected at about the verification rate whatever K.")]
    out += [("img", n, figs[n]) for n in ("score_distributions.png", "det_curve.png")]
    out += [("h2", "Accuracy by group size and enrollment length"),
            ("img", "accuracy_vs_group_size.png", figs["accuracy_vs_group_size.png"]),
            ("table", ["system", "enroll (s)", "group", "accuracy (%)", "5th–95th pct", "macro F1 (%)", "groups"],
             [[s["label"], Ts, K.replace("_", " ") + (f" ({c['k']})" if K == "all" else ""), _acc(c),
               f"{_pct(c['accuracy_p5'])}–{_pct(c['accuracy_p95'])}", _pct(c["macro_f1_mean"]), str(c["n_groups"])]
              for s in sysd.values() for Ts, cells in s["closed_set"].items() for K, c in cells.items()]),
            ("img", "accuracy_vs_enroll_seconds.png", figs["accuracy_vs_enroll_seconds.png"])]
    out += [("h2", "Which voices are confused")]
    out += [("img", n, c) for n, c in figs.items() if n.startswith("confusion") and n != first]
    out += [("h2", "Systems"), ("ul", [f"**{s['label']}** (`{s.get('model_id', '–')}`): {s['description']}"
                                       for s in metrics["systems"].values()])]
    if metrics["skipped_groups"]:
        out += [("p", "Not evaluated: " + "; ".join(f"{k}: {v}" for k, v in metrics["skipped_groups"].items()))]
    out += [("h2", "Protocol"), ("ul", [f"{k}: {v}" for k, v in p.items()]),
            ("h2", "Reproduce"), ("p", f"`{metrics['command']}`")]
    return out


def _inline_html(text):
    import re

    t = html.escape(text, quote=False)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)


def to_markdown(content) -> str:
    """Render :func:`blocks` as Markdown (figures linked as files next to it)."""
    lines = []
    for kind, *a in content:
        if kind in ("h1", "h2"):
            lines += ["#" * int(kind[1]) + " " + a[0], ""]
        elif kind == "p":
            lines += [a[0], ""]
        elif kind == "ul":
            lines += [f"- {x}" for x in a[0]] + [""]
        elif kind == "table":
            lines += ["| " + " | ".join(a[0]) + " |", "|" + "---|" * len(a[0])]
            lines += ["| " + " | ".join(r) + " |" for r in a[1]] + [""]
        elif kind == "img":
            lines += [f"![{a[1]}]({a[0]})", "", f"*{a[1]}*", ""]
    return "\n".join(lines)


CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;"
       "text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f2f4f8}"
       "figure{margin:1.5em 0}img{max-width:100%;height:auto;border:1px solid #eee}"
       "figcaption{color:#555;font-size:14px}code{background:#f4f4f4;padding:1px 3px}")


def to_html(content, *, images: dict, title: str) -> str:
    """Render :func:`blocks` as one self-contained HTML page (``images``: name -> data URI)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
             f"<style>{CSS}</style></head><body>"]
    for kind, *a in content:
        if kind in ("h1", "h2", "p"):
            parts.append(f"<{kind}>{_inline_html(a[0])}</{kind}>")
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline_html(x)}</li>" for x in a[0]) + "</ul>")
        elif kind == "table":
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in a[0]) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in a[1])
                         + "</table>")
        elif kind == "img":
            parts.append(f"<figure><img src='{images[a[0]]}' alt='{html.escape(a[1])}'>"
                         f"<figcaption>{html.escape(a[1])}</figcaption></figure>")
    return "\n".join(parts + ["</body></html>"])


def write_report(metrics: dict, out) -> dict[str, Path]:
    """Write ``metrics.json``, the figures, ``report.md`` and ``report.html`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics["headline"] = dict(zip(("columns", "rows"), headline(metrics)))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    figs = draw_figures(metrics, out)
    content = blocks(metrics, figs)
    (out / "report.md").write_text(to_markdown(content))
    images = {n: "data:image/png;base64," + base64.b64encode((out / n).read_bytes()).decode() for n in figs}
    (out / "report.html").write_text(to_html(content, images=images, title=html.escape(metrics["title"])))
    logger.info("report written to %s", out)
    return {"metrics": out / "metrics.json", "markdown": out / "report.md", "html": out / "report.html",
            **{n: out / n for n in figs}}
