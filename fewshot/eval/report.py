"""JSON, Markdown, HTML and plots from evaluation results.

:func:`write_report` takes the JSON-ready ``metrics`` dictionary that
``fewshot evaluate`` builds (see :func:`fewshot.eval.benchmark.evaluate_embeddings`
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

from .plots import draw_figures, pct, systems_of

logger = logging.getLogger(__name__)

HEADLINE_SIZES = ("3", "10", "all")


def _acc(cell):
    if cell is None:
        return "–"
    s = pct(cell["accuracy_mean"])
    return s if cell["n_groups"] == 1 else f"{s} ± {pct(cell['accuracy_std'])}"


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
            rows.append([s["label"]] + ["skipped"] * (len(head) - 1) + ["–"])
            continue
        rows.append(
            [s["label"]]
            + [_acc(s["closed_set"].get(T, {}).get(K)) for T in Ts for K in sizes]
            + [pct(s["verification"]["eer"])]
        )
    return head + ["EER (%)"], rows


OPEN_SET_HEAD = [
    "group",
    "enroll (s)",
    "members rejected (%)",
    "impostors accepted (%)",
    "members right and accepted (%)",
    "best case: members rejected (%)",
    "best case: impostors accepted (%)",
]


def open_set_rows(metrics) -> list[list[str]]:
    """Open-set rates of the default system per enrollment length and group size:
    at the shipped threshold, then at this data's EER threshold (the best case)."""
    rows = []
    for T, cells in metrics["systems"]["default"]["closed_set"].items():
        for K, c in cells.items():
            o, b = c.get("open_set"), c.get("open_set_at_eer")
            if o and b:
                rows.append(
                    [
                        K.replace("_", " "),
                        T,
                        pct(o["false_reject_rate"]),
                        pct(o["false_accept_rate"]),
                        pct(o["open_accuracy"]),
                        pct(b["false_reject_rate"]),
                        pct(b["false_accept_rate"]),
                    ]
                )
    return rows


OPEN_SET_SIZE_HEAD = [
    "group",
    "members' pieces rejected (%)",
    "outsiders' pieces accepted (%)",
    "members right and accepted (%)",
    "groups",
]


def open_set_size_rows(metrics) -> list[list[str]]:
    """The shipped unknown decision per group size (the default system)."""
    return [
        [K, pct(c["false_reject_rate"]), pct(c["false_accept_rate"]), pct(c["open_accuracy"]), str(c["n_groups"])]
        for K, c in metrics["systems"]["default"].get("open_set_by_size", {}).items()
    ]


def open_set_size_lines(metrics) -> list[str]:
    """:func:`open_set_size_rows` as text lines for the terminal."""
    rows = open_set_size_rows(metrics)
    return [" | ".join(OPEN_SET_SIZE_HEAD)] + [" | ".join(r) for r in rows] if rows else []


def open_set_lines(metrics) -> list[str]:
    """:func:`open_set_rows` as text lines for the terminal."""
    return [" | ".join(OPEN_SET_HEAD)] + [" | ".join(r) for r in open_set_rows(metrics)]


def condition_rows(metrics) -> tuple[list[str], list[list[str]]]:
    """The per-condition table of the default system (empty without ``--conditions``):
    the shipped enrollment, then multi-condition enrollment switched the other way."""
    conds = metrics["systems"]["default"].get("conditions") or {}
    first = next(iter(conds.values()), {})
    keys = [k for k in first if k.startswith("acc_")]
    n = metrics["dataset"]["speakers_evaluated"]
    cols = [f"{'all ' + str(n) if k == 'acc_all' else k[4:] + ' people'}" for k in keys]
    alt = "with" if first.get("other_enrollment", {}).get("multi_condition") else "without"
    head = (
        ["test pieces"]
        + [f"{c} (%)" for c in cols]
        + ["EER (%)"]
        + [f"{alt} multi-condition enrollment: {c} (%)" for c in cols]
        + [f"{alt}: EER (%)"]
    )
    return head, [
        [name]
        + [pct(c[k]) for k in keys]
        + [pct(c["eer"])]
        + [pct(c["other_enrollment"][k]) for k in keys]
        + [pct(c["other_enrollment"]["eer"])]
        for name, c in conds.items()
    ]


def condition_lines(metrics) -> list[str]:
    head, rows = condition_rows(metrics)
    return [" | ".join(head)] + [" | ".join(r) for r in rows] if rows else []


def _corpus_label(corpus: str) -> str:
    return corpus if corpus == "all" else f"{corpus}-*"


def _decision_cells(metrics, part: str):
    """``(condition, row label, cell)`` of the per-condition decisions (``part``: ``open_set`` or ``verify``), one row
    per distinct set of speakers (a corpus holding the same speakers as another is named in that one's label)."""
    for name, c in (metrics["systems"]["default"].get("conditions") or {}).items():
        cells = c.get(part) or {}
        for corpus, cell in cells.items():
            if "same_as" in cell or not cell.get("speakers"):
                continue
            same = [_corpus_label(k) for k, v in cells.items() if v.get("same_as") == corpus]
            yield name, " = ".join([_corpus_label(corpus), *same]) + f" ({cell['speakers']})", cell


def decision_sizes(metrics) -> list[str]:
    """The group sizes of the per-condition open-set tables, smallest first."""
    sizes = {K for _, _, cell in _decision_cells(metrics, "open_set") for K in (*cell["by_size"], *cell["left_out"])}
    return sorted(sizes, key=int)


def open_set_condition_rows(metrics, rate: str) -> tuple[list[str], list[list[str]]]:
    """Per condition and corpus, ``rate`` (``false_accept_rate``: outsiders' pieces accepted;
    ``false_reject_rate``: members' pieces called unknown) in % per group size; a dash where a cell is left out."""
    sizes = decision_sizes(metrics)
    head = ["test pieces", "speakers (number)"] + [f"{K} {'person' if K == '1' else 'people'} (%)" for K in sizes]
    return head, [
        [name, label] + [pct(cell["by_size"][K][rate]) if K in cell["by_size"] else "–" for K in sizes]
        for name, label, cell in _decision_cells(metrics, "open_set")
    ]


VERIFY_HEAD = [
    "test pieces",
    "speakers (number)",
    "false accepts (%)",
    "false rejects (%)",
    "EER (%)",
    "claims by others",
    "claims by the speaker",
]


def verify_condition_rows(metrics) -> list[list[str]]:
    """``verify``'s false accepts and false rejects (%) beside the EER, per condition and corpus."""
    return [
        [
            name,
            label,
            pct(c["false_accept_rate"]),
            pct(c["false_reject_rate"]),
            pct(c["eer"]),
            str(c["n_nontarget"]),
            str(c["n_target"]),
        ]
        for name, label, c in _decision_cells(metrics, "verify")
    ]


def worst_cell_line(metrics) -> str | None:
    """The per-condition open-set cell with the most outsiders accepted, in one line."""
    w = metrics["systems"]["default"].get("open_set_worst")
    if not w:
        return None
    return (
        f"Worst cell: {pct(w['false_accept_rate'])}% of outsiders' pieces accepted in groups of "
        f"{w['group_size']} ({_corpus_label(w['corpus'])}, {w['condition']}); members' pieces called unknown "
        f"there: {pct(w['false_reject_rate'])}%."
    )


def decision_left_out(metrics) -> list[str]:
    """Why cells of the per-condition decision tables are left out (the same in every condition)."""
    conds = metrics["systems"]["default"].get("conditions") or {}
    first = next(iter(conds.values()), {})
    notes = []
    for corpus, cell in first.get("open_set", {}).items():
        if "same_as" in cell:
            notes.append(f"{_corpus_label(corpus)}: the same speakers as {_corpus_label(cell['same_as'])}")
        elif not cell["speakers"]:
            notes.append(f"{_corpus_label(corpus)}: no such speakers in this dataset")
        else:
            notes += [f"groups of {K}, {_corpus_label(corpus)}: {why}" for K, why in cell["left_out"].items()]
    for corpus, cell in first.get("verify", {}).items():
        if cell.get("speakers") and "left_out" in cell:
            notes.append(f"verification, {_corpus_label(corpus)}: {cell['left_out']}")
    return notes


def decision_lines(metrics) -> list[str]:
    """The per-condition decision tables and the worst cell, as text lines for the terminal."""
    if not metrics["systems"]["default"].get("conditions"):
        return []
    lines = []
    for title, rate in (
        ("outsiders' pieces accepted", "false_accept_rate"),
        ("members' pieces called unknown", "false_reject_rate"),
    ):
        head, rows = open_set_condition_rows(metrics, rate)
        lines += [f"{title}, by group size:", " | ".join(head)] + [" | ".join(r) for r in rows]
    lines += ["verify:", " | ".join(VERIFY_HEAD)] + [" | ".join(r) for r in verify_condition_rows(metrics)]
    worst = worst_cell_line(metrics)
    return lines + ([worst] if worst else []) + [f"left out: {n}" for n in decision_left_out(metrics)]


def blocks(metrics, figs) -> list[tuple]:
    """The report's content as ``(kind, ...)`` blocks, rendered by :func:`to_markdown` and :func:`to_html`."""
    d, p = metrics["dataset"], metrics["protocol"]
    T = f"{p['verification_seconds']:g}"
    sysd = systems_of(metrics)
    genders = ", ".join(f"{v} {k}" for k, v in sorted(d.get("genders", {}).items()))
    out = [
        ("h1", metrics["title"]),
        (
            "p",
            f"Model `{metrics['model_id']}`. Dataset `{d['path']}`: {d['speakers_found']} speakers, "
            f"{d['speakers_evaluated']} evaluated{f' (gender: {genders})' if genders else ''}, "
            f"{len(d['left_out'])} left out with fewer than {p['min_test_pieces']} test pieces; "
            f"{d['test_pieces']} test pieces of {p['piece_s']:g} s. {p['draws']} random groups per size, "
            f"seed {p['seed']}. Written {metrics['created']} in {metrics['timing_s']['total']:.0f} s.",
        ),
        ("h2", "Headline"),
        ("table", *headline(metrics)),
        (
            "p",
            f"Mean accuracy (%) over {p['piece_s']:g} s test pieces ± standard deviation over the random "
            f"groups (the all-speaker group is a single group). EER: verification of each speaker's "
            f"{T} s enrollment centroid against every test piece (cosine).",
        ),
    ]
    first = next((n for n in figs if n.startswith("confusion_all")), None)
    out += [("img", first, figs[first])] if first else []
    op = metrics["operating_point"]
    main = metrics["systems"]["default"]
    if op.get("false_accept_rate") is not None and main.get("unknown_rule", "").startswith("AS-norm"):
        rule = (
            f'The product answers "unknown" when the score of an utterance against the speaker the SVM '
            f"picks, normalised against a cohort of training speakers (AS-norm), is below the threshold the "
            f"model stores for the group's size at a target of **{op['false_accept_rate']:.0%}** of outsiders' "
            f"speech accepted ({main['unknown_rule']})."
        )
    else:
        rule = (
            f'The product answers "unknown" when the cosine similarity of an utterance to the predicted '
            f"speaker's centroid is below the threshold stored with the model: "
            f"**{op['unknown_threshold']:.3f}** ({op.get('threshold_from') or 'no threshold stored: the default'})."
        )
    out += [
        ("h2", "Unknown: the shipped operating point"),
        (
            "p",
            rule + f" `fewshot identify` runs exactly this (SVM C={op['C']:g}, gamma={op['gamma']:g}). "
            "Impostors are the test pieces of every speaker outside the group.",
        ),
    ]
    if main.get("open_set_by_size"):
        out += [("table", OPEN_SET_SIZE_HEAD, open_set_size_rows(metrics))]
    out += [
        (
            "p",
            f"Per enrollment length and group size, with the rates at the cosine EER threshold of this "
            f"data's own verification scores beside them ({op['eer_threshold_here']:.3f}, EER "
            f"{pct(op['eer_here'], 2)} %), labelled best case: a threshold a user cannot know in advance, "
            f"and one that does not follow the group's size.",
        ),
        ("table", OPEN_SET_HEAD, open_set_rows(metrics)),
    ]
    out += [
        ("img", n, figs[n]) for n in ("det_by_group_size.png", "score_distributions.png", "det_curve.png") if n in figs
    ]
    head, rows = condition_rows(metrics)
    if rows:
        out += [
            ("h2", "Rooms, noise and microphones"),
            (
                "p",
                "The default system with clean enrollment and degraded test pieces (seeded; see "
                "`fewshot.eval.conditions`): accuracy (%) over the same random groups as above, "
                f"{metrics['protocol']['verification_seconds']:g} s enrollment, and the verification EER.",
            ),
            ("table", head, rows),
        ]
        out += [("img", n, figs[n]) for n in ("accuracy_vs_snr.png", "accuracy_vs_rt60.png") if n in figs]
        out += _decision_blocks(metrics)
    out += [
        ("h2", "Accuracy by group size and enrollment length"),
        ("img", "accuracy_vs_group_size.png", figs["accuracy_vs_group_size.png"]),
        (
            "table",
            ["system", "enroll (s)", "group", "accuracy (%)", "5th–95th pct", "macro F1 (%)", "groups"],
            [
                [
                    s["label"],
                    Ts,
                    K.replace("_", " ") + (f" ({c['k']})" if K == "all" else ""),
                    _acc(c),
                    f"{pct(c['accuracy_p5'])}–{pct(c['accuracy_p95'])}",
                    pct(c["macro_f1_mean"]),
                    str(c["n_groups"]),
                ]
                for s in sysd.values()
                for Ts, cells in s["closed_set"].items()
                for K, c in cells.items()
            ],
        ),
        ("img", "accuracy_vs_enroll_seconds.png", figs["accuracy_vs_enroll_seconds.png"]),
    ]
    out += [("h2", "Which voices are confused")]
    out += [("img", n, c) for n, c in figs.items() if n.startswith("confusion") and n != first]
    out += [
        ("h2", "Systems"),
        (
            "ul",
            [f"**{s['label']}** (`{s.get('model_id', '–')}`): {s['description']}" for s in metrics["systems"].values()],
        ),
    ]
    if metrics["skipped_groups"]:
        out += [("p", "Not evaluated: " + "; ".join(f"{k}: {v}" for k, v in metrics["skipped_groups"].items()))]
    out += [
        ("h2", "Protocol"),
        ("ul", [f"{k}: {v}" for k, v in p.items()]),
        ("h2", "Reproduce"),
        ("p", f"`{metrics['command']}`"),
    ]
    return out


def _decision_blocks(metrics) -> list[tuple]:
    """The shipped unknown and verify decisions per condition and corpus (``--conditions``)."""
    if not any(True for _ in _decision_cells(metrics, "open_set")):
        return []
    p = metrics["protocol"]
    op = metrics["operating_point"]
    rate = (
        "" if op.get("false_accept_rate") is None else f" (target: {op['false_accept_rate']:.0%} of outsiders' speech)"
    )
    out = [
        ("h2", "Unknown and verify in each condition, per corpus"),
        (
            "p",
            f"The decisions `fewshot identify` and `fewshot verify` make at the shipped setting{rate}, with "
            f"**clean enrollment** ({p['verification_seconds']:g} s, as `fewshot enroll` prepares it) and test "
            f"pieces of {p['piece_s']:g} s degraded by the condition: members' pieces and outsiders' pieces "
            "alike. Groups are drawn among one corpus's speakers (folder names `so-*` or `ls-*`, or all "
            f"together), {p['draws']} random groups per size, the same groups in every condition; outsiders "
            "are that corpus's speakers outside the group. Number of speakers in brackets.",
        ),
    ]
    worst = worst_cell_line(metrics)
    out += [("p", f"**{worst}**")] if worst else []
    for title, rate_key in (
        ("Outsiders' pieces accepted as a member (%), by group size", "false_accept_rate"),
        ("Members' pieces called unknown (%), by group size", "false_reject_rate"),
    ):
        out += [("p", title + ":"), ("table", *open_set_condition_rows(metrics, rate_key))]
    out += [
        (
            "p",
            '`fewshot verify` ("is this the claimed speaker?"): each speaker enrolled alone, every test piece '
            "of the corpus claimed to be theirs (the trials of the EER beside it); false accepts: another "
            "speaker's pieces accepted, false rejects: the speaker's own refused.",
        ),
        ("table", VERIFY_HEAD, verify_condition_rows(metrics)),
    ]
    notes = decision_left_out(metrics)
    out += [("p", "Left out: " + "; ".join(notes) + ".")] if notes else []
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


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;"
    "text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f2f4f8}"
    "figure{margin:1.5em 0}img{max-width:100%;height:auto;border:1px solid #eee}"
    "figcaption{color:#555;font-size:14px}code{background:#f4f4f4;padding:1px 3px}"
)


def to_html(content, *, images: dict, title: str) -> str:
    """Render :func:`blocks` as one self-contained HTML page (``images``: name -> data URI)."""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{CSS}</style></head><body>"
    ]
    for kind, *a in content:
        if kind in ("h1", "h2", "p"):
            parts.append(f"<{kind}>{_inline_html(a[0])}</{kind}>")
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline_html(x)}</li>" for x in a[0]) + "</ul>")
        elif kind == "table":
            parts.append(
                "<table><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in a[0])
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in a[1])
                + "</table>"
            )
        elif kind == "img":
            parts.append(
                f"<figure><img src='{images[a[0]]}' alt='{html.escape(a[1])}'>"
                f"<figcaption>{html.escape(a[1])}</figcaption></figure>"
            )
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
    return {
        "metrics": out / "metrics.json",
        "markdown": out / "report.md",
        "html": out / "report.html",
        **{n: out / n for n in figs},
    }
