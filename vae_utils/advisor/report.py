"""The advisor's report: a short Markdown page (and HTML), the range-test figure, the numbers as JSON.

    from vae_utils.advisor.report import write_report, plot_range_tests
    write_report(advice, "advice")   # advice/advice.md, advice.html, advice.json, range_test.svg/.png

Every file is written atomically (a temporary file in the folder, then ``os.replace``), so a
reader never sees half a report; the HTML is rendered from the Markdown with markdown-it-py
when it is installed (it comes with the book's dependencies) and skipped otherwise. The data file's
name is the reader's: it is escaped (``vae_utils.markup``) and raw HTML in the Markdown stays text.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..fileio import write_bytes, write_json
from ..publish.markup import html_escape, md_escape

__all__ = ["write_report", "plot_range_tests", "markdown", "advice_values", "measurement_scope"]


def plot_range_tests(range_tests, learning_rate: float | None = None):
    """The range tests' training loss against the learning rate (log axis): each update as a faint
    point, the running median as a line, the breaking point as a dot; ``learning_rate`` (the
    recommendation) as a dashed vertical line."""
    import matplotlib.pyplot as plt

    from ..plots import PALETTE, style

    with style():
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        for i, rt in enumerate(range_tests):
            c = PALETTE[i % len(PALETTE)]
            f = rt.frame()
            ax.plot(f.learning_rate, f.loss, ".", ms=2.5, color=c, alpha=0.35)
            ax.plot(f.learning_rate, f.smoothed_loss, color=c, label=f"{rt.optimizer}, batch {rt.batch_size}")
            if math.isfinite(rt.lr_break):
                y = float(np.interp(np.log(rt.lr_break), np.log(f.learning_rate), f.smoothed_loss))
                ax.plot([rt.lr_break], [y], "o", ms=7, mfc="white", mec=c, mew=2)
        finite = [rt.smoothed[np.isfinite(rt.smoothed)] for rt in range_tests]
        finite = [f for f in finite if len(f)]
        if finite:  # from the lowest loss to half the fall above the start: the blow-up leaves the axes
            lo, start = min(float(f.min()) for f in finite), max(float(f[0]) for f in finite)
            fall = max(start - lo, 1e-6 * max(abs(start), 1.0))
            ax.set_ylim(lo - 0.1 * fall, start + 0.5 * fall)
        if learning_rate is not None:
            ax.axvline(learning_rate, color="0.3", ls="--", lw=1.2, label=f"recommended rate {learning_rate:.3g}")
        ax.set(xscale="log", xlabel="learning rate (rising each update)", ylabel="training loss (nats per example)")
        ax.legend(loc="upper left")
    return fig


def _fmt(x, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def _step_table(advice) -> list[str]:
    rows = ["| step | what it measured | seconds |", "|---|---|---:|"]
    d, n, s = advice.data, advice.noise, advice.short_run
    what = {
        "split": f"{d['n_train']} / {d['n_val']} / {d['n_test']} examples (train / validation / test), {d['dim']} "
        f"features, split seed {d['split_seed']}",
        "range_test": "; ".join(
            f"{rt.optimizer} at batch {rt.batch_size}: breaks at {_fmt(rt.lr_break)}"
            + (f" (median of {', '.join(_fmt(v) for v in rt.repeats['breaks'])})" if rt.repeats else "")
            for rt in advice.range_tests
        ),
        "short_run": f"{s['updates']} updates at lr {_fmt(s['learning_rate'])}: validation ELBO {s['val_elbo']:.2f} nats",
        "noise_scale": f"B_simple {_fmt(n['b_simple'])} examples (95% CI {_fmt(n['low'])} to {_fmt(n['high'])} over "
        f"{n.get('n_used', 1)} of {n.get('n_runs', 1)} short runs; per run: "
        + ", ".join(_fmt(v) for v in n.get("estimates", []))
        + (
            f"; each run pooled over its checkpoints at updates {', '.join(str(c['updates']) for c in n['curve'])})"
            if n.get("curve")
            else ")"
        ),
        "recommendation": f"batch {advice.recommendation.batch_size}, lr {_fmt(advice.recommendation.learning_rate)}",
        "confirmation": advice.confirmation.get("verdict", ""),
    }
    for step, sec in advice.timings.items():
        rows.append(f"| {step.replace('_', ' ')} | {what.get(step, '')} | {sec:.1f} |")
    rows.append(f"| **total** | budget {advice.budget_s / 60:g} min | {advice.total_s:.1f} |")
    return rows


def markdown(advice, figure: str | None = "range_test.svg") -> str:
    """The report's Markdown."""
    r, d = advice.recommendation, advice.data
    lines = [
        f"# Training advice for {md_escape(Path(d['name']).name)}",
        "",
        f"**Batch size {r.batch_size}** (range {r.batch_range[0]}–{r.batch_range[1]}), **learning rate "
        f"{_fmt(r.learning_rate)}**, optimizer **{r.optimizer}**; {d['likelihood']} likelihood, {advice.architecture} "
        "architecture." + (" From the confirmation grid: it beat the measured advice (below)." if r.headline else ""),
        "",
    ]
    if advice.warnings:  # first: a collapsed run or a range test without a break changes what the advice is worth
        lines += ["## Warnings", "", *[f"- **{w}**" for w in advice.warnings], ""]
    lines += [
        "## Why",
        "",
        *[f"- {x}" for x in r.reasons],
        *[
            f"- With {o}: lr {_fmt(a['learning_rate'])} (the range test's divergence rate {_fmt(a['lr_break'])})."
            for o, a in r.alternatives.items()
        ],
        "",
    ]
    if figure:
        lines += [f"![Range test: training loss against a rising learning rate]({figure})", ""]
    lines += ["## What to watch", "", *[f"- {x}" for x in r.watch], ""]
    c = advice.confirmation
    lines += ["## Confirmation", "", c.get("verdict") or f"Not run: {c.get('reason', '')}.", ""]
    lines += ["## Steps and timings", "", *_step_table(advice), "", "All numbers: `advice.json`.", ""]
    return "\n".join(lines)


def _html(md: str, title: str) -> bytes | None:
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return None
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(md)  # raw HTML stays text
    css = "body{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.5}td,th{padding:0 .6em}"
    page = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html_escape(title)}</title><style>{css}</style></head>"
    return f"{page}<body>{body}</body></html>\n".encode()


def write_report(advice, out) -> dict:
    """Write advice.md, advice.html (when markdown-it-py is installed), advice.json and the
    range-test figure (SVG and PNG) into ``out`` (created); return {kind: path}."""
    import matplotlib.pyplot as plt

    from ..publish.figures import figure_bytes

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig = plot_range_tests(advice.range_tests, advice.recommendation.learning_rate)
    svg, png = figure_bytes(fig)
    plt.close(fig)
    files = {"svg": out / "range_test.svg", "png": out / "range_test.png", "markdown": out / "advice.md"}
    write_bytes(files["svg"], svg)
    write_bytes(files["png"], png)
    md = markdown(advice)
    write_bytes(files["markdown"], md.encode())
    html = _html(md, f"Training advice for {Path(advice.data['name']).name}")
    if html is not None:
        files["html"] = out / "advice.html"
        write_bytes(files["html"], html)
    files["json"] = out / "advice.json"
    write_json(files["json"], advice.to_dict() | {"files": {k: str(v) for k, v in files.items()}})
    return {k: str(v) for k, v in files.items()}


def advice_values(advice) -> dict:
    """The advice and the measurements behind it as a page states them (for ``verdicts.publish_values``):
    the recommendation, the range test's divergence rate, the ratio, B_simple over the short runs with
    its interval and its seed-to-seed spread (x/÷), the short runs' checkpoint and the time taken."""
    from ..publish.numbers import fmt, fmt_interval
    from .rules import LR_RATIO

    rec, noise, short = advice.recommendation, advice.noise, advice.short_run
    ratio = LR_RATIO[rec.optimizer]
    seeds = sorted(int(r["seed"]) for r in short.get("runs", [short]))
    return {
        "dataset": advice.data["name"], "batch-size": rec.batch_size, "batch-low": rec.batch_range[0],
        "batch-high": rec.batch_range[1], "lr": fmt(rec.learning_rate), "divergence-rate": fmt(rec.lr_break),
        "ratio": fmt(rec.lr_ratio), "ratio-64": fmt(ratio["at_64"]), "ratio-exp": fmt(ratio["exponent"]),
        "optimizer": rec.optimizer, "bsimple": fmt_interval(noise["b_simple"], noise["low"], noise["high"]),
        "bsimple-spread": fmt(noise.get("spread_factor"), 2), "noise-runs": int(noise["n_used"]),
        "noise-seeds": ", ".join(map(str, seeds)), "short-updates": int(short["updates"]),
        "short-batch": int(short["batch_size"]), "short-epochs": int(short["epochs"]), "short-lr": fmt(short["learning_rate"]),
        "short-val": fmt(short["val_elbo"]), "advise-s": f"{advice.total_s:.0f}",
        "noise-checkpoints": _and([str(c["updates"]) for c in noise.get("curve", [])]) or "n/a",
    }  # fmt: skip


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1] if words else ""


def measurement_scope(advice) -> dict:
    """The provenance of the range-test figure, from the tests themselves: {"scope": words, "runs": n}."""
    tests = advice.range_tests
    seeds = sorted({int(s) for t in tests for s in (t.repeats or {}).get("seeds", []) if s is not None})
    where = ", ".join(sorted({f"{t.optimizer} at batch {t.batch_size}" for t in tests}))
    longest = max((t.steps_run for t in tests), default=0)
    which = f" (seeds {seeds[0]}–{seeds[-1]})" if len(seeds) > 1 else ""
    n = sum(int((t.repeats or {}).get("n", 1)) for t in tests)
    return {"scope": f"{advice.data['name']}, range tests of {where}{which}, up to {longest} updates each", "runs": n}
