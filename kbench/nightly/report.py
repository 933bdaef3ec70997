"""``kbench report``: a static HTML page with PNG plots of a results directory's nightly sweeps.

**The verdict first.** The page (``index.html``, opens from disk, no server, no script) starts
with a banner: red with the regressions listed (configuration, change, p, confirmation) when a
configuration is ``slower``, amber when pairs are ``inconclusive`` or ``not_comparable`` or
there is nothing to compare yet, green when the night is clean; then the regressions table,
then the latest night compared with the previous one (a table that fits 1280 px: the notes,
spreads and loads of each pair in an expandable row), the latest night's table, its plots
(throughput against batch size per mode, latency percentiles, latency per image against MACs
per image, the model's own memory beside the process peak) and every configuration's history
as % change from its median, with the night-to-night noise band shaded and its steps marked.
Large nights are capped (``MAX_TABLE_ROWS``, ``MAX_LINES``, ``MAX_HISTORY_PANELS``) and the page
says what it left out.

**The output directory is the report's own**, and it never disappears: every file is written
into a staging directory first (beside ``out`` when it does not exist yet, inside it
otherwise), and only a complete report is published: a new ``out`` by one rename; an existing
one by moving the new plots in (their names carry a digest of their content, so they never
replace an image the current page shows), then ``index.html`` (one atomic rename), then the
marker, then removing the old plots the marker listed. SIGINT, SIGTERM and SIGHUP wait during
those renames. A failure or a signal before them leaves the previous report exactly as it was
and removes the staging directory; a full disk is one line, exit 2. Entries are replaced, never
written through: a symlink inside ``out`` is replaced by the file, never followed out of it.
An existing file, or a non-empty directory without the marker, is refused unless ``force``
(then nothing else in it is touched).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import html
import io
import math
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np

from kbench.common.humanize import human_megabytes, human_number
from kbench.errors import UsageError
from kbench.nightly.compare import Comparison, compare_loaded, label
from kbench.nightly.history import History, Series, load_history
from kbench.results import stats
from kbench.results.frame import nightly_files, previous_frame, printable, read_sweep

MARKER = ".kbench-report"
INDEX = "index.html"
STAGING_PREFIX = ".kbench-report-staging-"
HISTORY_PANELS_PER_FIGURE = 8
MAX_HISTORY_PANELS = 48
MAX_TABLE_ROWS = 300
MAX_LINES = 12  # lines of one throughput or memory plot
MAX_BARS = 40  # configurations of the latency plot
MAX_LABELS = 40  # annotated points of the latency-vs-MACs plot
_OWN_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(png|html)")
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
    if marker.is_file() and not marker.is_symlink():
        # Only plain names of the report's own kinds: a doctored marker cannot delete elsewhere.
        try:
            lines = marker.read_text(errors="replace").splitlines()
        except OSError as exc:
            raise UsageError(f"cannot read {str(marker)!r}: {exc.strerror or exc}") from None
        return [line for line in lines if _OWN_FILE.fullmatch(line)]
    if any(entry.name for entry in out.iterdir() if not entry.name.startswith(STAGING_PREFIX)) and not force:
        raise UsageError(f"--out {str(out)!r} is a non-empty directory that holds no kbench report; "
                         f"choose another directory or pass --force")
    return []


def check_out(out: str | Path, force: bool = False) -> None:
    """Refuse now (UsageError) an ``out`` that ``build_report`` would refuse later."""
    _check_output(Path(out), force)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "x"


def _digest(*parts: bytes | str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part if isinstance(part, bytes) else part.encode("utf-8", "surrogatepass"))
        hasher.update(b"\0")
    return hasher.hexdigest()[:12]


@contextlib.contextmanager
def _signals_held():
    """SIGINT/SIGTERM/SIGHUP wait while a report is published: received meanwhile, each is
    remembered and raised again, to the handler it was meant for, once the block is done.
    (Swapping the Python handlers rather than masking the signals: a process-directed signal
    masked in the main thread is still taken by any other thread.)"""
    received: list[int] = []

    def remember(signum, _frame):
        received.append(signum)

    try:
        previous = {sig: signal.signal(sig, remember) for sig in _SIGNALS}
    except ValueError:  # not the main thread: its signals are the main thread's business
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            signal.raise_signal(received[0])


def _remove_stale_staging(parent: Path, prefix: str) -> None:
    """Staging directories a killed report left behind (by their name, which only we use)."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


class _Staging:
    """Where a report is written before it is published (see the module docstring)."""

    def __init__(self, out: Path, old_files: list[str]):
        self.out = out
        self.old_files = old_files
        self.fresh = not out.exists()
        parent = out.parent if self.fresh else out
        prefix = f".{out.name}{STAGING_PREFIX}" if self.fresh else STAGING_PREFIX
        parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(parent, prefix)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self.path, 0o777 & ~mask)  # mkdtemp's 0700 would hide a new report from its readers
        self.images: list[str] = []

    def add_image(self, stem: str, png: bytes, identity: str = "") -> str:
        """Write one plot; its name carries a digest of what it shows (never an old name)."""
        name = f"{stem}-{_digest(identity, png)}.png"
        (self.path / name).write_bytes(png)
        self.images.append(name)
        return name

    def publish(self, page: str) -> Path:
        (self.path / INDEX).write_text(page, encoding="utf-8")
        (self.path / MARKER).write_text("\n".join([INDEX, *self.images]) + "\n", encoding="utf-8")
        with _signals_held():
            if self.fresh:
                try:
                    os.rename(self.path, self.out)
                    return self.out / INDEX
                except OSError:  # someone created it meanwhile: publish into it
                    self.fresh = False
            _replace_entry(self.path / MARKER, self.out / MARKER,
                           "\n".join(sorted(set(self.old_files) | set(self.images) | {INDEX})) + "\n")
            for name in self.images:
                os.replace(self.path / name, self.out / name)
            os.replace(self.path / INDEX, self.out / INDEX)
            os.replace(self.path / MARKER, self.out / MARKER)
            for name in set(self.old_files) - set(self.images) - {INDEX}:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                    os.unlink(self.out / name)  # a symlink is removed itself, never followed
            shutil.rmtree(self.path, ignore_errors=True)
        return self.out / INDEX

    def discard(self):
        shutil.rmtree(self.path, ignore_errors=True)


def _replace_entry(scratch: Path, target: Path, text: str) -> None:
    """``target`` replaced (the directory entry, a symlink too) by a file holding ``text``."""
    tmp = scratch.with_name(scratch.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


# ----------------------------------------------------------------------------- plots

def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _human_ticks(value, _position=None) -> str:
    return human_number(value) if value > 0 else ""


def _log_axis(axis, values) -> None:
    """A log axis with a labelled tick at every decade and in between (1, 2, 5 per decade; every
    digit when the data spans less than one decade), as readable numbers (2k, 5k, 10k)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    finite = np.asarray([v for v in values if v is not None and np.isfinite(v) and v > 0], dtype=float)
    narrow = finite.size == 0 or np.log10(finite.max()) - np.log10(finite.min()) < 1
    axis.set_major_locator(LogLocator(base=10, subs=tuple(range(1, 10)) if narrow else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(_human_ticks))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def _batch_axis(ax, batches) -> None:
    from matplotlib.ticker import NullLocator

    ticks = sorted({int(b) for b in batches})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    if len(ticks) == 1:
        ax.set_xlim(ticks[0] / 1.5, ticks[0] * 1.5)
    ax.set_xlabel("batch size (samples per step)")


def _legend_outside(ax) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _line_labels(frame):
    """``resnet18 64x64 [variant] (tensorflow, float32, jit)`` of every row, as one vectorised
    string operation (a 150k-row night has no time for a Python call per row)."""
    variant = frame["variant"].where(frame["variant"] == "", " [" + frame["variant"] + "]")
    jit = frame["jit"].map({"true": ", jit"}).fillna("")
    return (frame["model"] + " " + frame["input_h"] + "x" + frame["input_w"] + variant + " (" + frame["backend"]
            + ", " + frame["precision"] + jit + ")").map(printable)


def _quartile_bars(rounds_list, centers) -> list[list[float]]:
    """Error bars from each row's rounds (first and third quartile), never negative: a row's
    ``samples_per_s`` is rounded to 6 digits and may sit just outside its rounds' quartiles."""
    low, high = [], []
    for rounds, center in zip(rounds_list, centers):
        if len(rounds) >= 2:
            q1, q3 = np.percentile(rounds, [25, 75])
            low.append(max(0.0, center - q1))
            high.append(max(0.0, q3 - center))
        else:
            low.append(0.0)
            high.append(0.0)
    return [low, high]


def _capped_groups(rows, labels) -> tuple[list, int]:
    """The first ``MAX_LINES`` groups of ``rows`` by ``labels`` (in label order) and how many
    were left out. Only the kept groups are split: a 150k-row night has tens of thousands."""
    names = sorted(labels.dropna().unique())
    kept = labels.isin(names[:MAX_LINES])
    return list(rows[kept].groupby(labels[kept], sort=True)), max(0, len(names) - MAX_LINES)


def plot_throughput(ok, mode: str) -> tuple[bytes | None, str]:
    """(PNG, caption) of samples/s against batch size for one mode; (None, '') without rows."""
    rows = ok[ok["mode"] == mode]
    if rows.empty:
        return None, ""
    plt = _pyplot()
    groups, left_out = _capped_groups(rows, _line_labels(rows))
    fig, ax = plt.subplots(figsize=(10, 4.8))
    shown = []
    for label_text, group in groups:
        group = group.assign(batch=group["batch_size"].astype(int)).sort_values("batch")
        centers = group["throughput"].to_numpy()
        ax.errorbar(group["batch"], centers, yerr=_quartile_bars(group["round_values"], centers), marker="o",
                    capsize=3, label=label_text)
        shown.extend(centers)
    _batch_axis(ax, rows["batch_size"])
    ax.set_yscale("log")
    _log_axis(ax.yaxis, shown)
    ax.set_ylabel("throughput, samples/s (log scale)")
    ax.set_title(f"Throughput vs batch size: {mode} (median over rounds; bars: interquartile range)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    _legend_outside(ax)
    return _png(fig), (f"{MAX_LINES} of {MAX_LINES + left_out} configurations shown." if left_out else "")


def _short_label(row) -> str:
    return printable(f"{row['model']} {row['input_h']}x{row['input_w']} b{row['batch_size']} {row['mode']}" + (
        f" {row['backend']}" if row["backend"] != "tensorflow" else "") + (
        f" {row['precision']}" if row["precision"] != "float32" else ""))


def _floats(series) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def plot_latency(ok) -> tuple[bytes | None, str]:
    if ok.empty:
        return None, ""
    values = {column: _floats(ok[column]) for column in ("latency_ms_p50", "latency_ms_p90", "latency_ms_p99")}
    usable = np.isfinite(values["latency_ms_p50"]) & (values["latency_ms_p50"] > 0)
    if not usable.any():
        return None, ""
    rows = ok[usable].head(MAX_BARS)
    left_out = int(usable.sum()) - len(rows)
    plt = _pyplot()
    labels = list(rows.apply(_short_label, axis=1))
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.42 * len(labels) + 1.5)))
    height = 0.27
    shown = []
    for offset, (column, name) in enumerate((("latency_ms_p50", "p50"), ("latency_ms_p90", "p90"),
                                             ("latency_ms_p99", "p99"))):
        data = np.where(np.isfinite(values[column][usable][:len(rows)]), values[column][usable][:len(rows)], 0.0)
        ax.barh(y + (offset - 1) * height, data, height, label=name)
        shown.extend(data[data > 0])
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    _log_axis(ax.xaxis, shown)
    ax.set_xlabel("step latency, ms (over all timed steps; log scale)")
    ax.set_title("Latency percentiles per configuration", fontsize=10)
    ax.grid(True, axis="x", which="major", alpha=0.3)
    _legend_outside(ax)
    return _png(fig), (f"{len(rows)} of {len(rows) + left_out} configurations shown." if left_out else "")


_COLORS = [f"C{i}" for i in range(10)]


def plot_macs_vs_latency(ok) -> tuple[bytes | None, str]:
    """Latency per image against MACs per image for inference rows: a model above its batch
    size's dashed line (the median ms per MAC at that batch size) is slower than its MACs
    suggest."""
    rows = ok[ok["mode"] == "infer"]
    macs = _floats(rows["macs"]) if len(rows) else np.array([])
    usable = np.isfinite(macs) & (macs > 0)
    if not usable.any():
        return None, ""
    rows, macs = rows[usable], macs[usable]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5.5))
    ms_per_image = 1000.0 / rows["throughput"].to_numpy(dtype=float)
    batches = rows["batch_size"].astype(int).to_numpy()
    for index, batch in enumerate(sorted(set(batches))):
        chosen = batches == batch
        color = _COLORS[index % len(_COLORS)]
        ax.scatter(macs[chosen], ms_per_image[chosen], label=f"batch {batch}", s=30, color=color)
        line = np.geomspace(macs[chosen].min(), macs[chosen].max(), 20)
        slope = float(np.median(ms_per_image[chosen] / macs[chosen]))
        ax.plot(line, slope * line, "--", color=color, lw=1, label=f"batch {batch}: median ms per MAC")
    for (_, row), x, y in zip(rows.head(MAX_LABELS).iterrows(), macs, ms_per_image):
        ax.annotate(printable(f"{row['model']} b{row['batch_size']}"), (x, y), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis, macs)
    _log_axis(ax.yaxis, ms_per_image)
    ax.set_xlabel("MACs per image (multiply-accumulates; log scale)")
    ax.set_ylabel("latency per image, ms (inference; log scale)")
    ax.set_title("Measured latency vs MACs", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    _legend_outside(ax)
    caption = f"Labels on the first {MAX_LABELS} of {len(rows)} points." if len(rows) > MAX_LABELS else ""
    return _png(fig), caption


def plot_memory(ok) -> tuple[bytes | None, str]:
    """The model's own memory (``model_mem_mb``: peak minus the worker's baseline before the
    model was built) beside the process peak (``peak_mem_mb``), against batch size."""
    panels = [(column, title) for column, title in
              (("model_mem_mb", "the model's own memory, MB (peak minus the worker's baseline)"),
               ("peak_mem_mb", "peak memory of the process, MB"))
              if (_floats(ok[column]) > 0).any()] if len(ok) else []
    if not panels:
        return None, ""
    plt = _pyplot()
    labels = _line_labels(ok) + " " + ok["mode"]
    groups, left_out = _capped_groups(ok, labels)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels) + 2.5, 4.8), squeeze=False)
    for ax, (column, title) in zip(axes[0], panels):
        for label_text, group in groups:
            group = group.assign(batch=group["batch_size"].astype(int), value=_floats(group[column]))
            group = group[group["value"] > 0].sort_values("batch")
            if len(group):
                ax.plot(group["batch"], group["value"], marker="o", label=label_text)
        _batch_axis(ax, ok["batch_size"])
        ax.set_ylabel("MB")
        ax.set_ylim(bottom=0)
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    _legend_outside(axes[0][-1])
    sources = ", ".join(sorted(set(ok["peak_mem_source"]) - {""})) or "unknown"
    caption = f"Peak memory source: {sources}." + (
        f" {MAX_LINES} of {MAX_LINES + left_out} configurations shown." if left_out else "")
    return _png(fig), caption


def _night_tick(label_text: str) -> str:
    """'2026-11-05' -> '11-05'; '2026-11-05T02:00:00Z' -> '11-05 02:00'."""
    date, _, clock = label_text.partition("T")
    return date[5:] + (f" {clock[:5]}" if clock else "")


def plot_history(series_list: list[Series], title: str) -> bytes | None:
    """Each series as % change from its own median, the band of ``DEFAULT_NOISE_FACTOR`` x its
    night-to-night noise shaded (a step must leave it), steps marked and labelled inside."""
    if not series_list:
        return None
    plt = _pyplot()
    columns = 2 if len(series_list) > 1 else 1
    rows_n = math.ceil(len(series_list) / columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(6.2 * columns, 3.3 * rows_n), squeeze=False)
    for ax in axes.flat[len(series_list):]:
        ax.set_visible(False)
    factor = stats.DEFAULT_NOISE_FACTOR
    for ax, series in zip(axes.flat, series_list):
        values = np.asarray(series.values, dtype=float)
        median = float(np.median(values))
        pct = 100.0 * (values / median - 1.0)
        x = np.arange(len(values))
        bars = _quartile_bars([p.rounds for p in series.points], values)
        noise = stats.robust_noise(np.log(values))
        band = (100.0 * math.expm1(-factor * noise), 100.0 * math.expm1(factor * noise))
        ax.axhspan(*band, color="tab:blue", alpha=0.12, lw=0, label=f"noise band (±{factor:g}x night-to-night)")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.errorbar(x, pct, yerr=[100.0 * np.asarray(bars[0]) / median, 100.0 * np.asarray(bars[1]) / median],
                    marker="o", ms=4, capsize=2, lw=1, color="tab:blue")
        bounds = [0, *(s.index for s in series.steps), len(values)]
        for start, stop in zip(bounds, bounds[1:]):
            ax.hlines(float(np.median(pct[start:stop])), start - 0.3, stop - 0.7, colors="black", linestyles=":")
        reach = max(25.0, 1.25 * float(np.max(np.abs(pct))), 1.25 * abs(band[0]), 1.25 * band[1])
        ax.set_ylim(-reach, reach)
        ax.set_xlim(-0.6, len(values) - 0.4)
        for step in series.steps:
            color = "tab:red" if step.change < 0 else "tab:green"
            ax.axvline(step.index - 0.5, color=color, ls="--")
            right_half = step.index > len(values) / 2
            ax.text(step.index - 0.5 + (-0.1 if right_half else 0.1), 0.95 * reach,
                    printable(f"{step.change:+.0%} at {series.points[step.index].commit[:10] or '?'}"), fontsize=8,
                    color=color, ha="right" if right_half else "left", va="top", clip_on=True,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
        fields = series.fields
        ax.set_title(printable(f"{fields['model']} {fields['input_h']}x{fields['input_w']} b{fields['batch_size']} "
                               f"{fields['mode']} ({fields['backend']} {fields['precision']}); median "
                               f"{human_number(median)} samples/s"), fontsize=9)
        every = max(1, math.ceil(len(values) / 8))
        ticks = x[::every]
        ax.set_xticks(ticks, [_night_tick(series.points[i].night) for i in ticks], fontsize=8)
        ax.set_xlabel("night (UTC)", fontsize=8)
        ax.set_ylabel("% change from the median", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(True, alpha=0.3)
    axes.flat[0].legend(loc="lower left", fontsize=7, frameon=False)
    fig.suptitle(printable(title), fontsize=10)
    return _png(fig)


# ----------------------------------------------------------------------------- HTML

def _table(columns: list[tuple[str, str]], rows: list[dict], row_class: str | None = None,
           css: str = "") -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = []
    for row in rows:
        klass = f' class="{html.escape(str(row.get(row_class, "")))}"' if row_class else ""
        cells = "".join(f"<td>{row.get(key, '') if key in row.get('_html', ()) else html.escape(str(row.get(key, '')))}"
                        f"</td>" for key, _ in columns)
        body.append(f"<tr{klass}>{cells}</tr>")
    attribute = f' class="{css}"' if css else ""
    return (f"<table{attribute}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
            + "\n</tbody>\n</table>")


def _percent(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.1%}"


def _config_text(row) -> str:
    setup = [row["backend"], row["precision"]] + (["jit"] if row.get("jit") == "true" else [])
    extra = f" [{row['variant']}]" if row.get("variant") else ""
    return f"{row['model']} {row['input']}{extra} b{row['batch_size']} {row['mode']} ({', '.join(setup)})"


def _verdict_text(row) -> str:
    verdict = row["verdict"].replace("_", " ")
    if row["verdict"] == stats.SAME and row.get("confirmation", "").startswith("not confirmed"):
        return "same (not confirmed)"
    return verdict


def _regression_rows(comparison: Comparison) -> list[dict]:
    return [{"config": _config_text(row), "change": _percent(row["change"]),
             "p": "" if row["p_value"] is None else f"{row['p_value']:.2g}",
             "before": human_number(row["base_samples_per_s"]), "after": human_number(row["new_samples_per_s"]),
             "confirmation": row.get("confirmation") or "not re-measured (kbench nightly confirms)"}
            for row in comparison.regressions]


def _details(row) -> str:
    parts = []
    for name, value in (("confirmation", row.get("confirmation")), ("note", row.get("note")),
                        ("method", row.get("method"))):
        if value:
            parts.append(f"{name}: {value}")
    parts.append(f"rounds {row['base_rounds']} -> {row['new_rounds']}")
    spreads = [f"{s:.1%}" if s is not None else "?" for s in (row["base_spread"], row["new_spread"])]
    parts.append(f"spread of the rounds {spreads[0]} -> {spreads[1]}")
    loads = [f"{s:.0%}" if s is not None else "?" for s in (row["base_other_cpu"], row["new_other_cpu"])]
    parts.append(f"other processes' CPU share {loads[0]} -> {loads[1]}")
    items = "".join(f"<li>{html.escape(part)}</li>" for part in parts)
    return f"<details><summary>why</summary><ul>{items}</ul></details>"


_VERDICT_ORDER = {verdict: i for i, verdict in enumerate(stats.VERDICTS)}


def _compare_rows(comparison: Comparison) -> tuple[list[dict], int]:
    ordered = sorted(comparison.rows, key=lambda row: (_VERDICT_ORDER[row["verdict"]],
                                                       row["change"] if row["change"] is not None else 0.0))
    shown = ordered[:MAX_TABLE_ROWS]
    rows = [{"config": _config_text(row), "before": human_number(row["base_samples_per_s"]),
             "after": human_number(row["new_samples_per_s"]), "change": _percent(row["change"]),
             "needs": "" if row["min_effect"] is None else f"±{row['min_effect']:.0%}",
             "p": "" if row["p_value"] is None else f"{row['p_value']:.2g}", "verdict": _verdict_text(row),
             "class": row["verdict"], "details": _details(row), "_html": ("details",)} for row in shown]
    return rows, len(ordered) - len(shown)


def _latest_rows(frame) -> tuple[list[dict], int]:
    rows = []
    for _, row in frame.head(MAX_TABLE_ROWS).iterrows():
        ok = row["status"] == "ok"
        rounds = row["round_values"]
        spread = stats.relative_iqr(rounds) if ok and len(rounds) >= 2 else None
        other = row["other_cpu"]
        rows.append({
            "config": f"{row['model']} {row['input_h']}x{row['input_w']}"
                      + (f" [{row['variant']}]" if row["variant"] else ""),
            "batch": row["batch_size"], "mode": row["mode"],
            "setup": f"{row['backend']} {row['precision']}" + (" jit" if row["jit"] == "true" else ""),
            "status": row["status"], "params": human_number(row.get("params_trainable")),
            "macs": human_number(row.get("macs")),
            "sps": human_number(row["throughput"]) if ok else "",
            "spread": (f"±{spread / 2:.1%} ({len(rounds)} rounds)" if spread is not None
                       else (f"cv {row['step_cv']:.1%} (no rounds)" if ok and math.isfinite(row["step_cv"]) else "")),
            "p50": human_number(row.get("latency_ms_p50")) if ok else "",
            "p99": human_number(row.get("latency_ms_p99")) if ok else "",
            "model_mem": human_megabytes(row.get("model_mem_mb")) if ok else "",
            "mem": human_megabytes(row.get("peak_mem_mb")) if ok else "",
            "load": f"{other:.0%}" if ok and math.isfinite(other) else "",
            "error": row.get("error", ""),
        })
    return rows, max(0, len(frame) - MAX_TABLE_ROWS)


def _step_rows(history: History) -> list[dict]:
    return [{"config": f"{row['model']} {row['input']} b{row['batch_size']} {row['mode']} "
                       f"({row['backend']}, {row['precision']})", "host": row["host"], "night": row["night"],
             "commits": f"{row['previous_commit'][:12] or '?'} .. {row['commit'][:12] or '?'}",
             "direction": row["direction"], "change": _percent(row["change"]),
             "noise": f"{row['noise_multiple']:.1f}x", "p": f"{row['p_value']:.2g}", "note": row["note"]}
            for row in history.steps()]


CSS = """
body { font-family: system-ui, sans-serif; margin: 16px 24px; color: #222; max-width: 1232px; font-size: 15px; }
h1 { font-size: 1.35em; margin: 0 0 8px 0; } h2 { font-size: 1.15em; margin-top: 1.6em; } h3 { font-size: 1em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eee; }
td { overflow-wrap: anywhere; }
table.wide td:last-child { max-width: 22em; }
tr.slower td { background: #fdd; } tr.faster td { background: #dfd; }
tr.inconclusive td { background: #fff3cd; } tr.not_comparable td { color: #666; }
details summary { cursor: pointer; color: #0645ad; } details ul { margin: 4px 0; padding-left: 1.2em; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; margin: 0.4em 0; }
.banner { padding: 10px 14px; border-radius: 6px; margin: 8px 0 12px 0; border: 2px solid; }
.banner h2 { margin: 0 0 4px 0; font-size: 1.3em; } .banner p, .banner ul { margin: 4px 0; }
.banner.red { background: #fde2e2; border-color: #c62828; } .banner.red h2 { color: #b71c1c; }
.banner.amber { background: #fff4d6; border-color: #e0a100; } .banner.amber h2 { color: #8a6200; }
.banner.green { background: #e3f6e5; border-color: #2e7d32; } .banner.green h2 { color: #1b5e20; }
.muted { color: #555; font-size: 0.9em; }
"""


def _html_page(title: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(sections) + "\n</body>\n</html>\n")


def _figure(name: str, alt: str, caption: str = "") -> str:
    note = f'<p class="muted">{html.escape(caption)}</p>' if caption else ""
    return f'<p><img src="{html.escape(name)}" alt="{html.escape(alt)}"></p>{note}'


def banner(comparison: Comparison | None, latest_night: str) -> tuple[str, str]:
    """(colour, HTML) of the verdict banner: red, amber or green (see the module docstring)."""
    if comparison is None:
        return "amber", ('<div class="banner amber" id="verdict"><h2>No verdict yet</h2>'
                         f"<p>{html.escape(latest_night)} is the first night of this machine: nothing to compare "
                         f"with.</p></div>")
    counts = comparison.counts()
    against = f"against {html.escape(Path(comparison.base).name)}"
    if comparison.regressions:
        n = len(comparison.regressions)
        items = "".join(
            f"<li><strong>{html.escape(_config_text(row))}</strong>: {_percent(row['change'])}"
            + (f" (p={row['p_value']:.2g})" if row["p_value"] is not None else "")
            + f"; {html.escape(row.get('confirmation') or 'not re-measured (kbench nightly confirms)')}</li>"
            for row in comparison.regressions[:10])
        more = f"<p>and {n - 10} more (table below).</p>" if n > 10 else ""
        return "red", (f'<div class="banner red" id="verdict"><h2>Regression: {n} configuration'
                       f"{'s' if n > 1 else ''} slower</h2><p>{against}:</p><ul>{items}</ul>{more}</div>")
    summary = html.escape(comparison.summary())
    if counts[stats.INCONCLUSIVE] or counts[stats.NOT_COMPARABLE]:
        parts = [f"{counts[stats.INCONCLUSIVE]} inconclusive" if counts[stats.INCONCLUSIVE] else "",
                 f"{counts[stats.NOT_COMPARABLE]} not comparable" if counts[stats.NOT_COMPARABLE] else ""]
        return "amber", (f'<div class="banner amber" id="verdict"><h2>No regression found, but '
                         f"{' and '.join(p for p in parts if p)}</h2><p>{against}: {summary}.</p></div>")
    return "green", (f'<div class="banner green" id="verdict"><h2>No regression</h2>'
                     f"<p>{against}: {summary}.</p></div>")


# ----------------------------------------------------------------------------- the report

def _history_panels(history: History, comparison: Comparison | None) -> tuple[list[Series], int]:
    """The series to draw: those with steps and tonight's suspects first, then the rest, capped."""
    flagged = {row["key"] for row in comparison.rows if row["verdict"] != stats.SAME or row.get("confirmation")} \
        if comparison else set()
    ranked = sorted(history.series, key=lambda s: (not s.steps, s.key[:-1] not in flagged))
    return ranked[:MAX_HISTORY_PANELS], max(0, len(ranked) - MAX_HISTORY_PANELS)


def build_report(directory: str | Path, out: str | Path, tag: str = "sweep", force: bool = False,
                 threshold: float = stats.DEFAULT_THRESHOLD, alpha: float = stats.DEFAULT_ALPHA,
                 comparison: Comparison | None = None, history: History | None = None,
                 latest=None) -> Report:
    """Write ``out/index.html`` and its PNGs from the nightly CSVs of ``directory`` (see the
    module docstring). The latest night is compared with the previous run of its machine
    (``frame.previous_frame``) unless ``comparison`` is given (``kbench nightly``'s, confirmed,
    the one its exit code reports); ``history`` and ``latest`` (``(path, frame)`` of the latest
    night) when the caller has them already."""
    out = Path(out)
    previous_files = _check_output(out, force)
    files = nightly_files(directory, tag)
    if not files:
        load_history(directory, tag)  # its one-line error: no nightly CSV in the directory
    latest_night, latest_path = files[-1]
    latest_frame = latest[1] if latest is not None and Path(latest[0]).resolve() == latest_path.resolve() else None
    latest_frame = read_sweep(latest_path) if latest_frame is None else latest_frame
    frames = {latest_path: latest_frame}
    if comparison is None:
        base, base_frame, _ = previous_frame(directory, latest_path, tag, new_frame=latest_frame)
        comparison = (comparable(base_frame, latest_frame, base, latest_path, threshold, alpha)
                      if base is not None and len(latest_frame) else None)
        if base is not None:
            frames[base] = base_frame
    if history is None:  # validates every night's CSV before anything is written
        history = load_history(directory, tag, frames=frames)
    try:
        staging = _Staging(out, previous_files)
    except OSError as exc:
        raise UsageError(f"cannot write the report in {str(out)!r}: {exc.strerror or exc}") from None
    try:
        page = _render(staging, latest_night, latest_path, latest_frame, comparison, history)
        index = staging.publish(page)
    except OSError as exc:
        staging.discard()
        raise UsageError(f"cannot write the report in {str(out)!r}: {exc.strerror or exc}; "
                         f"the previous report is unchanged") from None
    except BaseException:
        staging.discard()
        raise
    return Report(out, index, staging.images, comparison, history)


def comparable(base_frame, new_frame, base: Path, new: Path, threshold: float, alpha: float,
               min_effects=None) -> Comparison | None:
    """``compare_loaded``, or None when the two nights share no configuration (the nightly sweep
    was changed: a new series starts, nothing to compare)."""
    if not set(base_frame["key"]) & set(new_frame["key"]):
        return None
    return compare_loaded(base_frame, new_frame, base, new, threshold, alpha, min_effects=min_effects)


def _render(staging: _Staging, latest_night: str, latest_path: Path, latest, comparison, history) -> str:
    from kbench.common import interrupts

    def image(stem: str, made: tuple[bytes | None, str], alt: str, identity: str = "") -> str:
        interrupts.checkpoint()
        png, caption = made
        if png is None:
            return '<p class="muted">(no data for this plot)</p>'
        return _figure(staging.add_image(stem, png, identity), alt, caption)

    ok = latest[latest["status"] == "ok"]
    commits = sorted(set(latest["git_commit"]) - {""})
    sections = [banner(comparison, latest_night)[1]]
    if comparison is not None and comparison.regressions:
        sections.append("<h2>Regressions</h2>")
        sections.append(_table([("config", "Configuration"), ("change", "Change"), ("p", "p"),
                                ("before", "Before (samples/s)"), ("after", "After (samples/s)"),
                                ("confirmation", "Confirmation")], _regression_rows(comparison), css="wide"))
    sections.append(f'<p class="muted">Night {html.escape(latest_night)}: {html.escape(latest_path.name)}, commit '
                    f"{html.escape(', '.join(commits) or '?')}, {len(latest)} configurations ({len(ok)} ok). "
                    f"{html.escape(history.summary())}.</p>")

    sections.append("<h2>Latest night vs the previous night</h2>")
    if comparison is None:
        sections.append("<p>Only one night so far: nothing to compare.</p>")
    else:
        rows, left_out = _compare_rows(comparison)
        sections.append(f"<p>{html.escape(Path(comparison.base).name)} → {html.escape(Path(comparison.new).name)}: "
                        f"{html.escape(comparison.summary())}. A pair is slower or faster only when its median "
                        f"moved by at least the minimum effect (“needs”) and the exact Mann-Whitney test on "
                        f"the rounds gives p ≤ {comparison.alpha:g}; kbench nightly re-measures every slower "
                        f"pair, interleaved with a control, before it reports it.</p>")
        sections.append(_table([("config", "Configuration"), ("before", "Before (samples/s)"),
                                ("after", "After (samples/s)"), ("change", "Change"), ("needs", "Needs"),
                                ("p", "p"), ("verdict", "Verdict"), ("details", "Details")], rows,
                               row_class="class", css="wide"))
        if left_out:
            sections.append(f'<p class="muted">{left_out} more pairs (all within noise or not comparable) are in '
                            f"<code>kbench compare</code>'s output.</p>")

    sections.append(f"<h2>Latest night: {html.escape(latest_night)}</h2>")
    rows, left_out = _latest_rows(latest)
    sections.append(_table([("config", "Model"), ("batch", "Batch"), ("mode", "Mode"), ("setup", "Setup"),
                            ("status", "Status"), ("params", "Params"), ("macs", "MACs/image"),
                            ("sps", "Samples/s"), ("spread", "Spread (IQR/2)"), ("p50", "p50 ms"),
                            ("p99", "p99 ms"), ("model_mem", "Model memory"), ("mem", "Process peak"),
                            ("load", "Other load"), ("error", "Error")], rows, css="wide"))
    if left_out:
        sections.append(f'<p class="muted">The first {MAX_TABLE_ROWS} of {len(latest)} rows; the CSV has them '
                        f"all.</p>")
    sections.append("<h2>Throughput vs batch size</h2>")
    for mode in ("infer", "train"):
        sections.append(image(f"throughput_{mode}", plot_throughput(ok, mode), f"throughput vs batch size, {mode}"))
    sections.append("<h2>Latency percentiles</h2>")
    sections.append(image("latency", plot_latency(ok), "latency percentiles per configuration"))
    sections.append("<h2>Latency vs MACs</h2>\n<p>Inference latency per image against MACs per image; "
                    "models above the dashed line of their batch size (its median ms per MAC) run slower "
                    "than their MACs suggest (memory access, depthwise and shuffle ops, many small layers).</p>")
    sections.append(image("macs_vs_latency", plot_macs_vs_latency(ok), "latency per image vs MACs per image"))
    sections.append("<h2>Memory vs batch size</h2>\n<p>Left: the model's own memory (the worker's peak minus "
                    "its baseline before the model was built, <code>model_mem_mb</code>); right: the whole "
                    "process's peak (<code>peak_mem_mb</code>), which on a CPU is mostly the framework.</p>")
    sections.append(image("memory", plot_memory(ok), "model memory and process peak memory vs batch size"))

    sections.append("<h2>History</h2>")
    sections.append(f"<p>{html.escape(history.summary())}. Each panel: one configuration's samples/s per night as "
                    f"% change from its median; shaded: ±{stats.DEFAULT_NOISE_FACTOR:g}x its night-to-night "
                    f"noise; dotted: segment medians; dashed: steps (binary segmentation of the log samples/s: "
                    f"{stats.DEFAULT_MIN_POINTS}+ nights each side, a change of {stats.DEFAULT_MIN_CHANGE:.0%}+ and "
                    f"{stats.DEFAULT_NOISE_FACTOR:g}x the noise).</p>")
    step_rows = _step_rows(history)
    if step_rows:
        sections.append(_table([("config", "Configuration"), ("host", "Host"), ("night", "From night"),
                                ("commits", "Commits (before .. at)"), ("direction", "Direction"),
                                ("change", "Change"), ("noise", "x noise"), ("p", "p"), ("note", "Note")],
                               step_rows, row_class="direction", css="wide"))
    else:
        sections.append("<p>No steps detected.</p>")
    panels, left_out = _history_panels(history, comparison)
    by_model: dict[str, list[Series]] = {}
    for series in panels:
        by_model.setdefault(series.fields["model"], []).append(series)
    for model, series_list in by_model.items():
        sections.append(f"<h3>{html.escape(model)}</h3>")
        for part, start in enumerate(range(0, len(series_list), HISTORY_PANELS_PER_FIGURE), start=1):
            chunk = series_list[start:start + HISTORY_PANELS_PER_FIGURE]
            identity = "\n".join([model, str(part), *("|".join(s.key) for s in chunk)])
            sections.append(image(f"history_{_safe_name(model)}_{part}",
                                  (plot_history(chunk, f"{model}: samples/s per night, % change from the median"), ""),
                                  f"history of {model}", identity))
    if left_out:
        sections.append(f'<p class="muted">{left_out} more configurations without steps are not drawn '
                        f"(<code>kbench history --series</code> lists them).</p>")
    return _html_page(f"kbench nightly report: {latest_night}", sections)
