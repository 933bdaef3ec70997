"""kbench report: the verdict first (banner, regressions), the page's structure, its images (each a
valid PNG with a name of its own), an output directory that never disappears (signals, full disk,
symlinks), every row kbench sweep can write renders (fuzzed), and the page in a real browser
(headless Chromium, marked slow)."""

import csv
import errno
import os
import random
import re
import shutil
import signal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kbench.cli import main
from kbench.errors import UsageError
from kbench.nightly import report as report_module
from kbench.nightly.report import INDEX, MARKER, STAGING_PREFIX, build_report
from kbench.results import schema, stats
from nightly_fixtures import write_nights

DATA = Path(__file__).parent / "data" / "nightly"
HISTORY = DATA / "history"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parent.parent


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.headings: list[str] = []
        self.row_classes: list[str] = []
        self.cells: list[str] = []
        self.banner_classes: list[str] = []
        self.title = ""
        self._open = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs["src"])
            assert attrs.get("alt")
        if tag == "tr" and attrs.get("class"):
            self.row_classes.append(attrs["class"])
        if tag == "div" and "banner" in (attrs.get("class") or ""):
            self.banner_classes.append(attrs["class"])
        self._open = tag

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open in ("h1", "h2", "h3"):
            self.headings.append(data)
        elif self._open == "title":
            self.title += data
        elif self._open == "td":
            self.cells.append(data)


def _parse(index: Path) -> _Page:
    page = _Page()
    page.feed(index.read_text())
    page.close()
    return page


def _assert_valid_png(path: Path):
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= 300 and image.height >= 200


def _copy_nights(directory: Path, nights) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for night in nights:
        shutil.copy(HISTORY / f"sweep-{night}.csv", directory)
    return directory


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("r") / "report"
    return build_report(HISTORY, out)


# ----------------------------------------------------------------------------- the page

def test_the_verdict_comes_first(report):
    """The banner is the page's first element under the title; on this night (11-07 -> 11-08, no
    pair slower, one faster) it is green and says "No regression"."""
    page = _parse(report.index)
    assert page.tags[:1] == ["html"] and "body" in page.tags
    assert page.title == "kbench nightly report: 2026-11-08"
    assert page.banner_classes == ["banner green"]
    text = report.index.read_text()
    assert text.index('id="verdict"') < text.index("<table")
    assert page.headings[:2] == ["kbench nightly report: 2026-11-08", "No regression"]
    order = ["Latest night vs the previous night", "Latest night: 2026-11-08", "Throughput vs batch size",
             "Latency percentiles", "Latency vs MACs", "Memory vs batch size", "History"]
    assert [h for h in page.headings if h in order] == order
    assert page.tags.count("table") == 3  # compare, latest night, steps


def test_human_headers_and_an_expandable_row_per_pair(report):
    text = report.index.read_text()
    for header in ("Configuration", "Before (samples/s)", "Change", "Verdict", "Model memory", "Process peak"):
        assert f"<th>{header}</th>" in text
    assert "<th>base_samples_per_s</th>" not in text and "<th>verdict</th>" not in text
    assert text.count("<details>") == 8  # one per compared configuration


def test_every_image_exists_is_a_png_and_has_a_name_of_its_own(report):
    page = _parse(report.index)
    stems = {name.rsplit("-", 1)[0] for name in page.images}
    assert stems == {"throughput_infer", "throughput_train", "latency", "macs_vs_latency", "memory",
                     "history_lenet5_1", "history_resnet18_1"}
    assert set(page.images) == set(report.images) and len(set(page.images)) == len(page.images)
    for name in page.images:
        assert "/" not in name  # relative to the page: it opens from disk
        assert len(name.rsplit("-", 1)[1]) == len("0123456789ab.png")  # a digest suffix
        _assert_valid_png(report.directory / name)
    assert (report.directory / MARKER).read_text().split() == [INDEX, *report.images]
    assert not [p for p in report.directory.parent.iterdir() if STAGING_PREFIX in p.name]


def test_the_injected_step_is_on_the_page(report):
    page = _parse(report.index)
    # steps table: the injected step and two load shifts (tests/data/nightly/README.md);
    # compare table (2026-11-07 -> 08): one row faster
    assert page.row_classes.count("slower") == 2 and page.row_classes.count("faster") == 2
    (injected,) = [s for s in report.history.steps() if (s["model"], s["batch_size"], s["mode"])
                   == ("resnet18", "8", "train")]
    assert injected["night"] == "2026-11-05"
    assert "2026-11-05" in page.cells and any(injected["commit"][:12] in cell for cell in page.cells)


def test_a_regression_night_names_it_in_red_first(tmp_path):
    directory = _copy_nights(tmp_path / "results", ("2026-11-03", "2026-11-04", "2026-11-05"))
    built = build_report(directory, directory / "report")
    assert [r["model"] for r in built.comparison.regressions] == ["resnet18"]
    page = _parse(built.index)
    assert page.banner_classes == ["banner red"]
    assert page.headings[1] == "Regression: 1 configuration slower" and page.headings[2] == "Regressions"
    text = built.index.read_text()
    banner = text[text.index('id="verdict"'):text.index("</div>")]
    assert "resnet18 32x32 b8 train (tensorflow, float32)" in banner and "%" in banner and "p=" in banner
    assert "not re-measured" in banner  # kbench report shows compare's verdict; kbench nightly confirms
    assert page.row_classes.count("slower") == 1 and "No steps detected." in text


def test_single_night_is_amber_with_nothing_to_compare(tmp_path):
    directory = _copy_nights(tmp_path / "results", ("2026-11-01",))
    built = build_report(directory, tmp_path / "out")
    assert built.comparison is None and "nothing to compare" in built.index.read_text()
    assert _parse(built.index).banner_classes == ["banner amber"]


def test_inconclusive_pairs_are_amber(tmp_path):
    """Two nights whose rows have 2 rounds each and moved by 30%: inconclusive, an amber banner."""
    def edit(night, row):
        value = float(row["samples_per_s"]) * (0.7 if night else 1.0)
        row.update(samples_per_s=f"{value:.6g}", samples_per_s_rounds=f"{value:.6g};{value * 1.01:.6g}", rounds="2")
    directory = write_nights(tmp_path / "results", {0: [100.0, 100.0]}, edit=edit)
    built = build_report(directory, tmp_path / "out")
    assert built.comparison.counts()[stats.INCONCLUSIVE] == 1 and not built.comparison.regressions
    page = _parse(built.index)
    assert page.banner_classes == ["banner amber"] and "inconclusive" in page.headings[1]


# ----------------------------------------------------------------------------- the output directory

@pytest.fixture
def one_night(tmp_path):
    return _copy_nights(tmp_path / "results", ("2026-11-01",))


def test_refuses_to_overwrite_what_is_not_a_report(one_night, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    assert main(["report", str(one_night), "--out", str(a_file)]) == 2
    assert a_file.read_text() == "mine"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert main(["report", str(one_night), "--out", str(busy)]) == 2
    assert "--force" in capsys.readouterr().err
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    assert main(["report", str(one_night), "--out", str(busy), "--force"]) == 0
    assert (busy / "keep.txt").read_text() == "mine" and (busy / INDEX).is_file()
    assert not [p for p in busy.iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_rewrites_its_own_report_and_drops_stale_images(one_night):
    out = one_night / "report"
    first = build_report(one_night, out)
    (out / "history_gone.png").write_bytes(b"old")
    marker = out / MARKER
    marker.write_text(marker.read_text() + "history_gone.png\n")
    assert main(["report", str(one_night)]) == 0  # default --out: DIR/report
    assert not (out / "history_gone.png").exists()
    names = {p.name for p in out.iterdir()}
    assert names == {INDEX, MARKER, *first.images}  # the same content: the same digests, nothing stale


def _two_reports(tmp_path):
    """A report of night 1 in OUT, then the directory holds nights 1-3 (a new report differs)."""
    directory = _copy_nights(tmp_path / "results", ("2026-11-01",))
    out = tmp_path / "R"
    build_report(directory, out)
    _copy_nights(directory, ("2026-11-02", "2026-11-03"))
    return directory, out, _snapshot(out)


def test_sigterm_while_building_keeps_the_previous_report(tmp_path, monkeypatch, capsys):
    """A real SIGTERM, sent from inside the build (while the plots are drawn): exit 143, the
    previous report byte for byte, no staging directory left."""
    directory, out, before = _two_reports(tmp_path)
    draw = report_module.plot_memory

    def interrupted(ok):
        os.kill(os.getpid(), signal.SIGTERM)
        return draw(ok)
    monkeypatch.setattr(report_module, "plot_memory", interrupted)
    assert main(["report", str(directory), "--out", str(out), "--force"]) == 128 + signal.SIGTERM
    assert _snapshot(out) == before
    assert "SIGTERM" in capsys.readouterr().err


def test_a_signal_while_publishing_waits_until_the_report_is_whole(tmp_path, monkeypatch):
    directory, out, before = _two_reports(tmp_path)
    replace = report_module._replace_entry

    def interrupted(*args):
        os.kill(os.getpid(), signal.SIGTERM)  # held: delivered once the new report is in place
        return replace(*args)
    monkeypatch.setattr(report_module, "_replace_entry", interrupted)
    assert main(["report", str(directory), "--out", str(out)]) == 128 + signal.SIGTERM
    page = _parse(out / INDEX)
    assert page.title == "kbench nightly report: 2026-11-03"
    assert all((out / name).is_file() for name in page.images)
    assert set(p.name for p in out.iterdir()) == {INDEX, MARKER, *page.images}


def test_a_full_disk_is_one_line_exit_2_and_the_previous_report_stays(tmp_path, monkeypatch, capsys):
    directory, out, before = _two_reports(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(report_module, "_png", full)
    assert main(["report", str(directory), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "previous report is unchanged" in err
    assert _snapshot(out) == before


def test_symlinks_inside_the_report_are_replaced_never_followed(tmp_path):
    """An index.html, marker or listed image that is a symlink to a file outside the report:
    the link is replaced or removed, the file it points to is never written."""
    directory, out, _ = _two_reports(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = {}
    for name in (INDEX, "old.png"):
        target = outside / f"victim-{name}"
        target.write_text("precious")
        victims[target] = "precious"
        (out / name).unlink(missing_ok=True)
        (out / name).symlink_to(target)
    marker = out / MARKER
    marker.write_text(marker.read_text() + "old.png\n")
    assert main(["report", str(directory), "--out", str(out), "--force"]) == 0
    assert all(path.read_text() == text for path, text in victims.items())
    assert not (out / INDEX).is_symlink() and (out / INDEX).is_file()
    assert not (out / "old.png").exists() and not (out / "old.png").is_symlink()


def test_history_plots_of_similar_model_names_never_collide(tmp_path):
    """`net/a.keras`, `net_a.keras` and `net a.keras` make the same safe name: every figure
    still gets a file of its own."""
    names = ["net/a.keras", "net_a.keras", "net a.keras"]

    def edit(night, row):
        value = float(row["samples_per_s"])
        if 1000 <= value < 1003:
            row["model"] = names[int(value) - 1000]
    values = {i: [1000.0 + i] * 3 for i in range(3)}
    values.update({i: [100.0 + i] * 3 for i in range(3, 8)})
    directory = write_nights(tmp_path / "results", values, edit=edit)
    built = build_report(directory, tmp_path / "out")
    history = [name for name in built.images if name.startswith("history_")]
    assert len(history) == len(set(history)) == 5  # three user models, lenet5 and resnet18
    assert len([n for n in history if n.startswith("history_net_a.keras_1-")]) == 3


def test_a_model_with_many_series_gets_several_figures(tmp_path):
    template = _template_rows()[0]  # lenet5 b1 infer
    directory = tmp_path / "results"
    directory.mkdir()
    for night in range(3):
        rows = [{**template, "batch_size": str(batch)} for batch in range(1, 10)]  # 9 series of one model
        _write_rows(directory / f"sweep-2026-10-0{night + 1}.csv", rows)
    built = build_report(directory, tmp_path / "out")
    history = sorted(name for name in built.images if name.startswith("history_"))
    assert [name.rsplit("-", 1)[0] for name in history] == ["history_lenet5_1", "history_lenet5_2"]


def test_bad_input_writes_nothing(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError):
        build_report(tmp_path, tmp_path / "out2")  # no nightly CSV
    assert not (tmp_path / "out2").exists()
    assert main(["report", str(tmp_path), "--tag", "../../x"]) == 2
    assert "--tag" in capsys.readouterr().err


# ----------------------------------------------------------------------------- every row renders

def _template_rows():
    with open(DATA / "rounds_a.csv", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader)


def _fuzzed_row(rng: random.Random, template: dict, identity: random.Random) -> dict:
    """A row ``kbench sweep`` could write: any status, numbers at their edges, optional columns
    empty, rounds of 1 to 7 values (equal, nearly equal, far apart), odd model names."""
    row = dict(template)
    status = rng.choice(schema.STATUSES + ("ok", "ok", "ok"))
    row.update(status=status, error="" if status == "ok" else rng.choice(["", "OOM when allocating", "x" * 300]))
    tiny, huge = 1e-300, 1e300
    for column in ("latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "peak_mem_mb", "model_mem_mb", "macs",
                   "params_trainable", "cv", "compile_s"):
        row[column] = rng.choice(["", "0", "1", f"{tiny:g}", f"{huge:g}", f"{rng.uniform(0, 1e4):.6g}"])
    row["other_cpu_frac"] = rng.choice(["", "0", "1", "0.5"])
    row["batch_size"] = str(identity.choice([1, 2, 3, 7, 8, 1024]))  # the key: the same every night
    row["model"] = identity.choice(["lenet5", "m/x.keras", "π net", "a" * 80, "mod:make", "x\x1b[31m"])
    if status == "ok":
        count = rng.randint(1, 7)
        center = rng.choice([1e-3, 1.0, 100.0, 1e6])
        kind = rng.choice(["equal", "close", "far"])
        rounds = [center * {"equal": 1.0, "close": 1 + 1e-5 * i, "far": 10.0 ** rng.uniform(-2, 2)}[kind]
                  for i in range(count)]
        row.update(samples_per_s_rounds=rng.choice([schema.format_rounds(rounds), ""]), rounds=str(count))
        if not row["samples_per_s_rounds"]:
            row["rounds"] = ""
        row["samples_per_s"] = f"{rng.choice([rounds[0], center * 0.999, sorted(rounds)[len(rounds) // 2]]):.6g}"
    else:
        row.update(samples_per_s="", samples_per_s_rounds="", rounds="")
    assert schema.row_problem(row) is None, (schema.row_problem(row), row)
    return row


def _write_rows(path: Path, rows: list[dict]):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# Cells of 1e300 on a log axis: matplotlib's own tick arithmetic overflows (and says so) while
# the figure still renders, which is what this test checks.
@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@pytest.mark.parametrize("seed", range(6))
def test_every_row_a_sweep_can_write_renders(tmp_path, seed):
    rng = random.Random(seed)
    templates = _template_rows()
    directory = tmp_path / "results"
    directory.mkdir()
    for night in range(3):
        rows, seen = [], set()
        for index, template in enumerate(templates):
            row = _fuzzed_row(rng, template, random.Random(seed * 100 + index))
            key = schema.row_key(row)
            if key not in seen:
                seen.add(key)
                rows.append(row)
        _write_rows(directory / f"sweep-2026-10-0{night + 1}.csv", rows)
    built = build_report(directory, tmp_path / "out")
    for name in built.images:
        _assert_valid_png(built.directory / name)


def test_rounds_one_thousandth_apart_render(tmp_path):
    """Rounds `100;100.001` with samples_per_s rounded to 100: the error bar's lower half would
    be negative (matplotlib refuses it)."""
    rows = _template_rows()
    for row in rows:
        row.update(samples_per_s="100", samples_per_s_rounds="100;100.001", rounds="2")
    directory = tmp_path / "results"
    directory.mkdir()
    for night in ("2026-10-01", "2026-10-02"):
        _write_rows(directory / f"sweep-{night}.csv", rows)
    assert main(["report", str(directory)]) == 0
    assert (directory / "report" / INDEX).is_file()


# ----------------------------------------------------------------------------- in a real browser

def _chromium():
    """Selenium driving Debian's chromium + chromium-driver (no browser download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: apt-get install -y chromium chromium-driver")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--hide-scrollbars", "--window-size=1280,800"):
        options.add_argument(flag)
    return webdriver, options, Service("/usr/bin/chromedriver")


@pytest.mark.slow
def test_a_regression_night_in_headless_chromium(tmp_path):
    """At 1280x800: the red banner naming the regression is in the first viewport, the page
    never scrolls sideways, and every image loaded. Keeps a screenshot (docs/report.png is one)."""
    webdriver, options, service = _chromium()
    directory = _copy_nights(tmp_path / "results", [f"2026-11-0{n}" for n in range(1, 6)])
    built = build_report(directory, tmp_path / "report")
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_window_size(1280, 800)
        driver.get(built.index.resolve().as_uri())
        viewport = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        banner = driver.execute_script(
            "const r = document.getElementById('verdict').getBoundingClientRect();"
            "return [r.top, r.bottom, r.left, r.right, getComputedStyle(document.getElementById('verdict'))"
            ".backgroundColor, document.getElementById('verdict').innerText]")
        assert 0 <= banner[0] and banner[1] <= viewport[1] and banner[3] <= viewport[0], (banner, viewport)
        assert "Regression" in banner[5] and "resnet18 32x32 b8 train" in banner[5]
        red, green, blue = [int(v) for v in re.findall(r"\d+", banner[4])[:3]]  # "rgb(253, 226, 226)"
        assert red > green + 20 and red > blue + 20  # a red banner
        widths = driver.execute_script("return [document.documentElement.scrollWidth, document.documentElement"
                                       ".clientWidth]")
        assert widths[0] <= widths[1], widths  # no horizontal scroll
        images = driver.execute_script("return Array.from(document.images).map(i => [i.src, i.complete, "
                                       "i.naturalWidth])")
        assert len(images) == len(built.images) and all(done and width > 0 for _, done, width in images), images
        shot = tmp_path / "first-screen.png"
        driver.save_screenshot(str(shot))
        _assert_valid_png(shot)
        if os.environ.get("KBENCH_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["KBENCH_KEEP_SCREENSHOT"])
    finally:
        driver.quit()
