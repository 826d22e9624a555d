"""The report's figures: confusion matrices, accuracy curves, score distributions, DET.

Everything drawn comes from the ``metrics`` dictionary of ``fewshot evaluate``
(see :mod:`fewshot.eval.report`), so figures can be redrawn from a
``metrics.json`` alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = {"default": "#1f5fbf", "mfcc": "#9a9a9a", "original": "#d9822b"}


def _fig(w, h):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=110, layout="constrained")


def systems_of(metrics):
    """The systems of ``metrics`` that were evaluated (a skipped baseline has no figures)."""
    return {k: v for k, v in metrics["systems"].items() if "closed_set" in v}


def pct(x, digits=1):
    """A rate as a percentage with ``digits`` decimals, or a dash for ``None``."""
    return "–" if x is None else f"{100 * x:.{digits}f}"


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
        ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=fs, color="white" if R[i, j] > 0.6 else "black")
    ax.set_xlabel("predicted speaker")
    ax.set_ylabel("true speaker")
    import textwrap

    title = title or f"{k} speakers, accuracy {pct(rep['accuracy'])} %"
    ax.set_title(
        "\n".join(w for line in title.split("\n") for w in textwrap.wrap(line, int(11 * (side + 0.9)))), fontsize=10
    )
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
    for key, s in systems_of(metrics).items():
        for T in Ts:
            cells = {K: c for K, c in s["closed_set"].get(T, {}).items() if not K.endswith("same_gender")}
            ks = sorted(cells, key=lambda K: _x_of(K, n))
            x = [_x_of(K, n) for K in ks]
            y = np.array([100 * cells[K]["accuracy_mean"] for K in ks])
            ax.plot(x, y, styles.get(T, "-"), marker="o", color=COLORS.get(key, "k"), label=f"{s['label']}, {T} s")
            if key == "default":
                sd = np.array([100 * cells[K]["accuracy_std"] for K in ks])
                ax.fill_between(x, y - sd, np.minimum(y + sd, 100), color=COLORS["default"], alpha=0.08)
    ks = sorted(
        {
            K
            for s in systems_of(metrics).values()
            for c in s["closed_set"].values()
            for K in c
            if not K.endswith("same_gender")
        },
        key=lambda K: _x_of(K, n),
    )
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
    systems = systems_of(metrics)
    n = metrics["dataset"]["speakers_evaluated"]
    fig = _fig(3.6 * len(systems) + 0.6, 4.0)
    axes = fig.subplots(1, len(systems), sharey=True, squeeze=False)[0]
    for ax, (key, s) in zip(axes, systems.items()):
        curve = s["enrollment_curve"]
        for i, K in enumerate(sorted(curve, key=lambda K: _x_of(K, n))):
            Ts = sorted(curve[K], key=float)
            ax.plot(
                [float(T) for T in Ts],
                [100 * curve[K][T] for T in Ts],
                marker="o",
                color=f"C{i}",
                label=f"all ({n})" if K == "all" else f"{K} people",
            )
        ax.set_title(s["label"], fontsize=10)
        ax.set_xlabel("enrollment speech per person (s)")
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 101)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.savefig(path)


def plot_score_distributions(metrics, path):
    """Target and non-target cosine scores per system; dashed: the EER threshold of this data,
    solid: the shipped unknown threshold (the default system only)."""
    systems = systems_of(metrics)
    fig = _fig(3.8 * len(systems) + 0.4, 3.6)
    axes = fig.subplots(1, len(systems), squeeze=False)[0]
    for ax, (key, s) in zip(axes, systems.items()):
        v = s["verification"]
        edges = np.array(v["histogram"]["edges"])
        for name, color in (("nontarget", "#c0392b"), ("target", "#27ae60")):
            counts = np.array(v["histogram"][name], float)
            dens = counts / max(counts.sum(), 1) / np.diff(edges)
            ax.stairs(dens, edges, fill=True, alpha=0.35, color=color, label=f"{name}s ({int(counts.sum())})")
        ax.axvline(
            v["eer_threshold"],
            color="k",
            ls="--",
            lw=1,
            label=f"EER threshold {v['eer_threshold']:.3f} (EER {pct(v['eer'])} %)",
        )
        if s.get("thresholds", {}).get("open_set") is not None:  # a cosine threshold
            thr = s["thresholds"]["open_set"]
            ax.axvline(thr, color="k", lw=1.2, label=f"shipped threshold {thr:.3f}")
        ax.set_title(s["label"], fontsize=10)
        ax.set_xlabel(f"cosine, {v['enroll_seconds']:g} s centroid vs 5 s piece")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("density")
    fig.savefig(path)


def _det_axes(ax, title):
    """Probit axes in percent, with the diagonal."""
    from scipy.stats import norm

    ticks = np.array([0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 40, 60, 80])
    ax.set_xticks(norm.ppf(ticks / 100), [f"{t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks / 100), [f"{t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(0.0001), norm.ppf(0.8))
    ax.set_ylim(norm.ppf(0.001), norm.ppf(0.8))
    ax.plot([-5, 5], [-5, 5], color="0.8", lw=0.8)
    ax.set_xlabel("false accept rate (%)")
    ax.set_ylabel("false reject rate (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def _det_line(ax, det, **kwargs):
    from scipy.stats import norm

    far, frr = np.array(det["far"]), np.array(det["frr"])
    ok = (far > 0) & (far < 1) & (frr > 0) & (frr < 1)
    ax.plot(norm.ppf(far[ok]), norm.ppf(frr[ok]), **kwargs)


def plot_det(metrics, path):
    """DET curves (probit axes) of every system, the EER point marked."""
    from scipy.stats import norm

    fig = _fig(5.2, 5.0)
    ax = fig.add_subplot()
    for key, s in systems_of(metrics).items():
        v = s["verification"]
        _det_line(ax, v["det"], color=COLORS.get(key, "k"), label=f"{s['label']} (EER {pct(v['eer'])} %)")
        if 0 < v["eer"] < 1:
            ax.plot(norm.ppf(v["eer"]), norm.ppf(v["eer"]), "o", color=COLORS.get(key, "k"))
    _det_axes(ax, "Verification DET: 15 s enrollment vs 5 s pieces")
    ax.legend(fontsize=8, loc="lower left")
    fig.savefig(path)


def plot_open_set_det(metrics, path):
    """DET curves of the unknown decision per group size (the default system), the shipped operating point marked."""
    from scipy.stats import norm

    fig = _fig(5.2, 5.0)
    ax = fig.add_subplot()
    for i, (K, c) in enumerate(metrics["systems"]["default"]["open_set_by_size"].items()):
        color = f"C{i}"
        _det_line(
            ax,
            c["det"],
            color=color,
            label=f"group of {K}: shipped {pct(c['false_accept_rate'])} % "
            f"accepted, {pct(c['false_reject_rate'])} % rejected",
        )
        if 0 < c["false_accept_rate"] < 1 and 0 < c["false_reject_rate"] < 1:
            ax.plot(norm.ppf(c["false_accept_rate"]), norm.ppf(c["false_reject_rate"]), "o", color=color)
    _det_axes(ax, "Unknown decision by group size: outsiders' pieces vs members' pieces")
    ax.legend(fontsize=7, loc="lower left")
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
            plot_confusion(
                cell["representative"],
                out / name,
                title=f"{main['label']}: {what}\n{T_} s "
                f"enrollment, accuracy {pct(cell['representative']['accuracy'])} %",
            )
            figs[name] = (
                f"Confusion matrix, {what} ({T_} s enrollment; the group whose accuracy is the median of the draws)"
                if K != "all"
                else f"Confusion matrix, {what}, {T_} s enrollment."
            )
    for key, s in systems_of(metrics).items():
        if key != "default" and "all" in s["closed_set"].get(T, {}):
            name = f"confusion_all_{T}s_{key}.png"
            rep = s["closed_set"][T]["all"]["representative"]
            plot_confusion(
                rep,
                out / name,
                title=f"{s['label']}: all speakers\n{T} s enrollment, accuracy {pct(rep['accuracy'])} %",
            )
            figs[name] = f"Confusion matrix of {s['label']}, all speakers, {T} s enrollment."
    plot_score_distributions(metrics, out / "score_distributions.png")
    figs["score_distributions.png"] = (
        "Cosine scores of targets and non-targets; dashed: the EER threshold of "
        "this data (best case), solid: the shipped unknown threshold."
    )
    plot_det(metrics, out / "det_curve.png")
    figs["det_curve.png"] = "Detection error trade-off of speaker verification."
    if main.get("open_set_by_size"):
        plot_open_set_det(metrics, out / "det_by_group_size.png")
        figs["det_by_group_size.png"] = (
            "Detection error trade-off of the unknown decision per group size, on the "
            "scores it is made from; dots: the shipped operating point."
        )
    figs.update(plot_conditions(metrics, out))
    return figs


def plot_conditions(metrics, out) -> dict[str, str]:
    """Accuracy of all speakers against SNR (per noise) and against RT60, when conditions were run."""
    conds = metrics["systems"]["default"].get("conditions") or {}
    if "clean" not in conds:
        return {}
    key = "acc_all" if "acc_all" in conds["clean"] else next(k for k in conds["clean"] if k.startswith("acc_"))
    figs = {}
    series = {}
    for name, c in conds.items():
        if c["noise"] and not c["rt60_s"] and not c["channel"]:
            series.setdefault(c["noise"], []).append((c["snr_db"], c[key]))
    if series:
        fig = _fig(5.0, 3.4)
        ax = fig.subplots()
        for noise, pts in sorted(series.items()):
            pts = sorted(pts) + [(30.0, conds["clean"][key])]
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], "o-", label=noise)
        ax.set_xlabel("SNR (dB); clean drawn at 30")
        ax.set_ylabel(f"accuracy, {key[4:]} (%)")
        ax.legend(fontsize=8)
        fig.savefig(Path(out) / "accuracy_vs_snr.png")
        figs["accuracy_vs_snr.png"] = "Accuracy against signal-to-noise ratio of the test pieces, per kind of noise."
    rooms = sorted(
        [(0.0, conds["clean"][key])]
        + [(c["rt60_s"], c[key]) for c in conds.values() if c["rt60_s"] and not c["noise"] and not c["channel"]]
    )
    if len(rooms) > 1:
        fig = _fig(5.0, 3.4)
        ax = fig.subplots()
        ax.plot([r[0] for r in rooms], [100 * r[1] for r in rooms], "o-", color=COLORS["default"])
        ax.set_xlabel("RT60 of the simulated room (s)")
        ax.set_ylabel(f"accuracy, {key[4:]} (%)")
        fig.savefig(Path(out) / "accuracy_vs_rt60.png")
        figs["accuracy_vs_rt60.png"] = "Accuracy against reverberation time of the room the test pieces were played in."
    return figs
