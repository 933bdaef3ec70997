"""``kbench report``: a static HTML page with PNG plots of a results directory's nightly sweeps.

The page (``index.html``, opens from disk, no server, no script) shows the latest night: a
table of every configuration with human-readable numbers (25.6M, 4.09G), throughput against
batch size per mode, latency percentiles, measured latency per image against MACs per image
across the models (the speed-vs-FLOPs gap ShuffleNet V2's guidelines are about), peak memory
against batch size; then the latest night compared with the previous one (``kbench.nightly.compare``)
and every configuration's history with its detected steps marked (``kbench.nightly.history``).

The output directory is the report's own: it is created with a marker file listing what the
report wrote, and a later report replaces exactly those files. An existing file, or a non-empty
directory without the marker, is refused unless ``force`` (then nothing in it is deleted; the
report's files are written beside what is there).
"""

from __future__ import annotations

import dataclasses
import html
import math
import re
from pathlib import Path

import numpy as np

from kbench.results import stats
from kbench.nightly.compare import COLUMNS as COMPARE_COLUMNS
from kbench.nightly.compare import Comparison, compare_files
from kbench.common.csvio import write_text_atomic
from kbench.errors import UsageError
from kbench.nightly.history import History, Series, load_history
from kbench.common.humanize import display_value, human_megabytes, human_number
from kbench.results.frame import nightly_files, previous_run, read_sweep

MARKER = ".kbench-report"
INDEX = "index.html"
HISTORY_PANELS_PER_FIGURE = 8
_OWN_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(png|html)")


@dataclasses.dataclass
class Report:
    directory: Path
    index: Path
    images: list[str]
    comparison: Comparison | None
    history: History


# ----------------------------------------------------------------------------- the output directory

def _check_output(out: Path, force: bool) -> list[str]:
    """Files of an earlier report in ``out`` (to replace); UsageError if ``out`` is not ours."""
    from kbench.common import outputs

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} is an existing file; the report needs a directory")
    outputs.check_output_dir(out)  # /proc, a parent that is a file, no permission: refused now
    if not out.exists():
        return []
    marker = out / MARKER
    if marker.is_file():
        # Only plain names of the report's own kinds: a doctored marker cannot delete elsewhere.
        return [line for line in marker.read_text().splitlines() if _OWN_FILE.fullmatch(line)]
    if any(out.iterdir()) and not force:
        raise UsageError(f"--out {str(out)!r} is a non-empty directory that holds no kbench report; "
                         f"choose another directory or pass --force")
    return []


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# ----------------------------------------------------------------------------- plots

def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _line_label(row) -> str:
    label = f"{row['model']} {row['input_h']}x{row['input_w']}"
    if row["variant"]:
        label += f" [{row['variant']}]"
    extras = [row["backend"], row["precision"]] + (["jit"] if row["jit"] == "true" else [])
    return f"{label} ({', '.join(extras)})"


def _batch_axis(ax, batches):
    ax.set_xscale("log", base=2)
    ticks = sorted({int(b) for b in batches})
    from matplotlib.ticker import NullLocator

    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def _save(fig, path: Path):
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    _pyplot().close(fig)


def _rounds_quartiles(rounds: list[float]) -> tuple[float, float] | None:
    if len(rounds) < 2:
        return None
    q1, q3 = np.percentile(rounds, [25, 75])
    return float(q1), float(q3)


def plot_throughput(ok, mode: str, path: Path) -> bool:
    rows = ok[ok["mode"] == mode]
    if rows.empty:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, group in rows.groupby(rows.apply(_line_label, axis=1), sort=True):
        group = group.assign(batch=group["batch_size"].astype(int)).sort_values("batch")
        low, high = [], []
        for _, row in group.iterrows():
            quartiles = _rounds_quartiles(row["round_values"]) or (row["throughput"], row["throughput"])
            low.append(row["throughput"] - quartiles[0])
            high.append(quartiles[1] - row["throughput"])
        ax.errorbar(group["batch"], group["throughput"], yerr=[low, high], marker="o", capsize=3, label=label)
    _batch_axis(ax, rows["batch_size"])
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("samples/s (median over rounds; bars: IQR)")
    ax.set_title(f"Throughput vs batch size: {mode}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)
    return True


def _short_label(row) -> str:
    return f"{row['model']} b{row['batch_size']} {row['mode']}" + (
        f" {row['backend']}" if row["backend"] != "tensorflow" else "") + (
        f" {row['precision']}" if row["precision"] != "float32" else "")


def plot_latency(ok, path: Path) -> bool:
    rows = ok[[c for c in ("latency_ms_p50", "latency_ms_p90", "latency_ms_p99") if c in ok.columns]]
    if ok.empty or rows.shape[1] < 3:
        return False
    values = rows.apply(lambda col: col.map(_as_float))
    if values.isna().all().all():
        return False
    plt = _pyplot()
    labels = list(ok.apply(_short_label, axis=1))
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.45 * len(labels) + 1.5)))
    height = 0.27
    for offset, (column, name) in enumerate((("latency_ms_p50", "p50"), ("latency_ms_p90", "p90"),
                                             ("latency_ms_p99", "p99"))):
        ax.barh(y + (offset - 1) * height, values[column], height, label=name)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("step latency, ms (over all timed steps)")
    ax.set_title("Latency percentiles per configuration")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


_COLORS = [f"C{i}" for i in range(10)] * 10


def plot_macs_vs_latency(ok, path: Path) -> bool:
    """Latency per image against MACs per image for inference rows: a model above its batch
    size's dashed line (the median ms per MAC at that batch size) is slower than its MACs
    suggest."""
    rows = ok[(ok["mode"] == "infer") & ok["macs"].map(lambda v: _as_float(v) > 0)] if "macs" in ok.columns else ok[:0]
    if rows.empty:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    macs = rows["macs"].map(_as_float).to_numpy()
    ms_per_image = 1000.0 / rows["throughput"].to_numpy()
    batches = rows["batch_size"].astype(int).to_numpy()
    for color, batch in zip(_COLORS, sorted(set(batches))):
        chosen = batches == batch
        ax.scatter(macs[chosen], ms_per_image[chosen], label=f"batch {batch}", s=30, color=color)
    for (_, row), x, y in zip(rows.iterrows(), macs, ms_per_image):
        ax.annotate(f"{row['model']} b{row['batch_size']}", (x, y), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    line = np.geomspace(macs.min(), macs.max(), 20) if macs.max() > macs.min() else np.array([macs.min()])
    for color, batch in zip(_COLORS, sorted(set(batches))):
        chosen = batches == batch
        slope = float(np.median(ms_per_image[chosen] / macs[chosen]))
        ax.plot(line, slope * line, "--", color=color, lw=1, label=f"batch {batch}: median ms per MAC")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MACs per image")
    ax.set_ylabel("ms per image (inference)")
    ax.set_title("Measured latency vs MACs")
    ax.xaxis.set_major_formatter(_human_formatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def plot_memory(ok, path: Path) -> bool:
    if "peak_mem_mb" not in ok.columns:
        return False
    rows = ok[ok["peak_mem_mb"].map(lambda v: _as_float(v) > 0)]
    if rows.empty:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    labels = rows.apply(lambda r: f"{_line_label(r)} {r['mode']}", axis=1)
    for label, group in rows.groupby(labels, sort=True):
        group = group.assign(batch=group["batch_size"].astype(int)).sort_values("batch")
        ax.plot(group["batch"], group["peak_mem_mb"].map(_as_float), marker="o", label=label)
    _batch_axis(ax, rows["batch_size"])
    ax.set_xlabel("batch size")
    ax.set_ylabel("peak memory, MB (peak_mem_source: " + ", ".join(sorted(set(rows.get("peak_mem_source", []))))
                  + ")")
    ax.set_title("Peak memory vs batch size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)
    return True


def plot_history(series_list: list[Series], title: str, path: Path) -> bool:
    if not series_list:
        return False
    plt = _pyplot()
    columns = 2 if len(series_list) > 1 else 1
    rows_n = math.ceil(len(series_list) / columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(6 * columns, 3.2 * rows_n), squeeze=False)
    for ax in axes.flat[len(series_list):]:
        ax.set_visible(False)
    for ax, series in zip(axes.flat, series_list):
        x = np.arange(len(series.points))
        values = np.asarray(series.values)
        low, high = [], []
        for point in series.points:
            quartiles = _rounds_quartiles(point.rounds) or (point.samples_per_s, point.samples_per_s)
            low.append(point.samples_per_s - quartiles[0])
            high.append(quartiles[1] - point.samples_per_s)
        ax.errorbar(x, values, yerr=[low, high], marker="o", ms=4, capsize=2, lw=1)
        bounds = [0, *(s.index for s in series.steps), len(values)]
        for start, stop in zip(bounds, bounds[1:]):
            ax.hlines(np.median(values[start:stop]), start - 0.3, stop - 0.7, colors="grey", linestyles=":")
        for step in series.steps:
            color = "tab:red" if step.change < 0 else "tab:green"
            ax.axvline(step.index - 0.5, color=color, ls="--")
            ax.annotate(f"{step.change:+.0%} @ {series.points[step.index].commit[:10]}", (step.index - 0.5, 1.0),
                        xycoords=("data", "axes fraction"), fontsize=7, color=color, ha="left", va="top")
        fields = series.fields
        ax.set_title(f"{fields['model']} {fields['input_h']}x{fields['input_w']} b{fields['batch_size']} "
                     f"{fields['mode']} {fields['backend']} {fields['precision']}", fontsize=8)
        ax.set_xticks(x, [p.night[5:] for p in series.points], rotation=60, fontsize=6)
        ax.set_ylabel("samples/s", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return True


def _human_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: human_number(value))


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ----------------------------------------------------------------------------- HTML

def _table(columns: list[tuple[str, str]], rows: list[dict], row_class: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = []
    for row in rows:
        css = f' class="{html.escape(str(row.get(row_class, "")))}"' if row_class else ""
        cells = "".join(f"<td>{html.escape(str(row.get(key, '')))}</td>" for key, _ in columns)
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def _latest_rows(frame) -> list[dict]:
    rows = []
    for _, row in frame.iterrows():
        ok = row["status"] == "ok"
        spread = stats.relative_iqr(row["round_values"]) if ok and len(row["round_values"]) >= 2 else None
        rows.append({
            "config": f"{row['model']} {row['input_h']}x{row['input_w']}"
                      + (f" [{row['variant']}]" if row["variant"] else ""),
            "batch": row["batch_size"], "mode": row["mode"],
            "setup": f"{row['backend']} {row['precision']}" + (" jit" if row["jit"] == "true" else ""),
            "status": row["status"], "params": human_number(row.get("params_trainable")),
            "macs": human_number(row.get("macs")),
            "sps": human_number(row["throughput"]) if ok else "",
            "spread": (f"±{spread / 2:.1%} ({len(row['round_values'])} rounds)" if spread is not None
                       else (f"cv {row['step_cv']:.1%} (no rounds)" if ok and math.isfinite(row["step_cv"]) else "")),
            "p50": human_number(row.get("latency_ms_p50")) if ok else "",
            "p99": human_number(row.get("latency_ms_p99")) if ok else "",
            "mem": human_megabytes(row.get("peak_mem_mb")) if ok else "",
            "error": row.get("error", ""),
        })
    return rows


def _compare_rows(comparison: Comparison) -> list[dict]:
    return [{c: display_value(c, row.get(c)) for c in COMPARE_COLUMNS} for row in comparison.rows]


def _step_rows(history: History) -> list[dict]:
    return [{**{c: display_value(c, v) for c, v in row.items()}, "noise_multiple": f"{row['noise_multiple']:.1f}x"}
            for row in history.steps()]


CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
th { background: #eee; }
tr.slower td { background: #fdd; } tr.faster td { background: #dfd; }
tr.not_comparable td { color: #777; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.summary { background: #f6f6f6; padding: 0.8em; border-left: 4px solid #888; }
"""


def _html_page(title: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(sections) + "\n</body>\n</html>\n")


def _figure(name: str, alt: str) -> str:
    return f'<p><img src="{html.escape(name)}" alt="{html.escape(alt)}"></p>'


# ----------------------------------------------------------------------------- the report

def check_out(out: str | Path, force: bool = False) -> None:
    """Refuse now (UsageError) an ``out`` that ``build_report`` would refuse later."""
    _check_output(Path(out), force)


def build_report(directory: str | Path, out: str | Path, tag: str = "sweep", force: bool = False,
                 threshold: float = stats.DEFAULT_THRESHOLD, alpha: float = stats.DEFAULT_ALPHA,
                 comparison: Comparison | None = None, history: History | None = None) -> Report:
    """Write ``out/index.html`` and its PNGs from the nightly CSVs of ``directory``. The latest
    night is compared with the previous run of its machine (``sweep_frame.previous_run``) unless
    ``comparison`` is given (run_all.sh's, the one its exit code reports); ``history`` is
    ``load_history(directory, tag)`` when the caller has it already."""
    out = Path(out)
    previous_files = _check_output(out, force)
    if history is None:
        history = load_history(directory, tag)  # validates every night's CSV before anything is written
    files = nightly_files(directory, tag)
    latest_night, latest_path = files[-1]
    latest = read_sweep(latest_path)
    if comparison is None:
        base, _ = previous_run(directory, latest_path, tag)
        comparison = compare_files(base, latest_path, threshold, alpha) if base else None

    out.mkdir(parents=True, exist_ok=True)
    for name in previous_files:
        (out / name).unlink(missing_ok=True)
    images: list[str] = []

    def image(name: str, made: bool) -> str:
        if not made:
            return "<p>(no data for this plot)</p>"
        images.append(name)
        return _figure(name, name.rsplit(".", 1)[0].replace("_", " "))

    ok = latest[latest["status"] == "ok"]
    commits = sorted(set(latest["git_commit"]) - {""})
    sections = [f'<p class="summary">{html.escape(_summary(history, comparison, latest_night, commits))}</p>']
    latest_columns = [("config", "model"), ("batch", "batch"), ("mode", "mode"), ("setup", "backend, precision"),
                      ("status", "status"), ("params", "params"), ("macs", "MACs/image"), ("sps", "samples/s"),
                      ("spread", "spread (IQR/2)"), ("p50", "p50 ms"), ("p99", "p99 ms"), ("mem", "peak memory"),
                      ("error", "error")]
    sections.append(f"<h2>Latest night: {html.escape(latest_night)}</h2>")
    sections.append(f"<p>{html.escape(latest_path.name)}, commit {html.escape(', '.join(commits) or '?')}, "
                    f"{len(latest)} configurations ({len(ok)} ok).</p>")
    sections.append(_table(latest_columns, _latest_rows(latest)))
    sections.append("<h2>Throughput vs batch size</h2>")
    for mode in ("infer", "train"):
        sections.append(image(f"throughput_{mode}.png", plot_throughput(ok, mode, out / f"throughput_{mode}.png")))
    sections.append("<h2>Latency percentiles</h2>")
    sections.append(image("latency.png", plot_latency(ok, out / "latency.png")))
    sections.append("<h2>Latency vs MACs</h2>\n<p>Inference latency per image against MACs per image; "
                    "models above the dashed line of their batch size (its median ms per MAC) run slower "
                    "than their MACs suggest "
                    "(memory access, depthwise and shuffle ops, many small layers).</p>")
    sections.append(image("macs_vs_latency.png", plot_macs_vs_latency(ok, out / "macs_vs_latency.png")))
    sections.append("<h2>Peak memory vs batch size</h2>")
    sections.append(image("memory.png", plot_memory(ok, out / "memory.png")))

    sections.append("<h2>Latest night vs the previous night</h2>")
    if comparison is None:
        sections.append("<p>Only one night so far: nothing to compare.</p>")
    else:
        sections.append(f"<p>{html.escape(Path(comparison.base).name)} -> {html.escape(Path(comparison.new).name)}: "
                        f"{html.escape(comparison.summary())}</p>")
        sections.append(_table([(c, c) for c in COMPARE_COLUMNS], _compare_rows(comparison), row_class="verdict"))

    sections.append("<h2>History</h2>")
    sections.append(f"<p>{html.escape(history.summary())}. Steps: recursive binary segmentation of each "
                    f"series' log samples/s; a step needs {stats.DEFAULT_MIN_POINTS}+ nights each side, a median "
                    f"change of {stats.DEFAULT_MIN_CHANGE:.0%}+ and {stats.DEFAULT_NOISE_FACTOR:g}x the series' "
                    f"night-to-night noise. Dotted: segment medians; dashed: steps.</p>")
    step_rows = _step_rows(history)
    if step_rows:
        step_columns = ["model", "input", "batch_size", "mode", "backend", "precision", "host", "night", "commit",
                        "previous_commit", "direction", "before", "after", "change", "noise_multiple", "p_value",
                        "note"]
        sections.append(_table([(c, c) for c in step_columns], step_rows, row_class="direction"))
    else:
        sections.append("<p>No steps detected.</p>")
    by_model: dict[str, list[Series]] = {}
    for series in history.series:
        by_model.setdefault(series.fields["model"], []).append(series)
    for model, series_list in by_model.items():
        for part, start in enumerate(range(0, len(series_list), HISTORY_PANELS_PER_FIGURE)):
            chunk = series_list[start:start + HISTORY_PANELS_PER_FIGURE]
            name = f"history_{_safe_name(model)}" + (f"_{part + 1}" if start else "") + ".png"
            sections.append(f"<h3>{html.escape(model)}</h3>" if part == 0 else "")
            sections.append(image(name, plot_history(chunk, f"{model}: samples/s per night", out / name)))

    index = out / INDEX
    write_text_atomic(index, _html_page(f"kbench nightly report: {latest_night}", sections))
    write_text_atomic(out / MARKER, "\n".join([INDEX, *images]) + "\n")
    return Report(out, index, images, comparison, history)


def _summary(history: History, comparison: Comparison | None, night: str, commits: list[str]) -> str:
    text = f"Night {night} (commit {', '.join(commits) or '?'}). "
    if comparison is None:
        text += "No previous night to compare with. "
    else:
        text += f"Against the previous night: {comparison.summary()}. "
    text += f"History: {history.summary()}."
    return text
