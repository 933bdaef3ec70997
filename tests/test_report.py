"""kbench report: the page's structure, its images (each exists and is a valid PNG), refusing to
overwrite what is not a report; in a real browser (headless Chromium) in a test marked slow."""

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kbench.cli import main
from kbench.errors import UsageError
from kbench.nightly.report import INDEX, MARKER, build_report

DATA = Path(__file__).parent / "data" / "nightly"
HISTORY = DATA / "history"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.headings: list[str] = []
        self.row_classes: list[str] = []
        self.cells: list[str] = []
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


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("r") / "report"
    return build_report(HISTORY, out)


def test_page_structure(report):
    page = _parse(report.index)
    assert page.tags[:1] == ["html"] and "body" in page.tags
    assert page.title == "kbench nightly report: 2026-11-08"
    for heading in ("Latest night: 2026-11-08", "Throughput vs batch size", "Latency percentiles", "Latency vs MACs",
                    "Peak memory vs batch size", "Latest night vs the previous night", "History"):
        assert heading in page.headings
    assert page.tags.count("table") == 3  # latest night, compare, steps


def test_every_image_exists_and_is_a_png(report):
    page = _parse(report.index)
    expected = {"throughput_infer.png", "throughput_train.png", "latency.png", "macs_vs_latency.png", "memory.png",
                "history_lenet5.png", "history_resnet18.png"}
    assert set(page.images) == expected == set(report.images)
    for name in page.images:
        assert "/" not in name  # relative to the page: it opens from disk
        _assert_valid_png(report.directory / name)
    assert (report.directory / MARKER).read_text().split() == [INDEX, *report.images]


def test_the_injected_step_is_on_the_page(report):
    page = _parse(report.index)
    # steps table: the injected step and two load shifts (tests/data/nightly/README.md);
    # compare table (2026-11-07 -> 08): one row faster
    assert page.row_classes.count("slower") == 2 and page.row_classes.count("faster") == 2
    (injected,) = [s for s in report.history.steps() if (s["model"], s["batch_size"], s["mode"])
                   == ("resnet18", "8", "train")]
    assert injected["night"] == "2026-11-05"
    assert "2026-11-05" in page.cells and injected["commit"] in page.cells


def test_latest_night_slower_than_the_previous_is_marked(tmp_path):
    directory = tmp_path / "results"
    directory.mkdir()
    for night in ("2026-11-03", "2026-11-04", "2026-11-05"):
        shutil.copy(HISTORY / f"sweep-{night}.csv", directory)
    built = build_report(directory, directory / "report")
    assert [r["model"] for r in built.comparison.regressions] == ["resnet18"]
    page = _parse(built.index)
    assert page.row_classes.count("slower") == 1 and "No steps detected." in built.index.read_text()


@pytest.fixture
def one_night(tmp_path):
    directory = tmp_path / "results"
    directory.mkdir()
    shutil.copy(HISTORY / "sweep-2026-11-01.csv", directory)
    return directory


def test_single_night(one_night, tmp_path):
    built = build_report(one_night, tmp_path / "out")
    assert built.comparison is None and "nothing to compare" in built.index.read_text()


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


def test_rewrites_its_own_report_and_drops_stale_images(one_night):
    out = one_night / "report"
    build_report(one_night, out)
    (out / "history_gone.png").write_bytes(b"old")
    marker = out / MARKER
    marker.write_text(marker.read_text() + "history_gone.png\n")
    assert main(["report", str(one_night)]) == 0  # default --out: DIR/report
    assert not (out / "history_gone.png").exists()
    assert (out / INDEX).is_file()


def test_bad_input_writes_nothing(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError):
        build_report(tmp_path, tmp_path / "out2")  # no nightly CSV
    assert not (tmp_path / "out2").exists()


@pytest.mark.slow
def test_page_renders_in_headless_chromium(report, tmp_path):
    """Needs Debian's chromium (`apt-get install -y chromium`)."""
    import numpy as np
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed: apt-get update && apt-get install -y chromium")
    shot = tmp_path / "page.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1400,3000", f"--screenshot={shot}", report.index.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)
    _assert_valid_png(shot)
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10  # text, tables and plots, not a blank page
    assert (pixels < 128).mean() > 0.005  # some dark pixels: the text
