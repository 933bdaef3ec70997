"""``kbench convert-benchmarks``: pytest-benchmark JSON -> rows in the sweep CSV format."""

import json

import pandas as pd

from kbench.cli import main
from kbench.results.schema import REQUIRED_COLUMNS


def _benchmark_json(path, data_points):
    payload = {
        "machine_info": {"node": "bench-host", "python_version": "3.11.7", "cpu": {"brand_raw": "Test CPU"}},
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "datetime": "2026-11-22T10:00:00.000000",
        "benchmarks": [{
            "name": "test_conv_bn_relu",
            "group": "blocks",
            "stats": {"mean": sum(data_points) / len(data_points), "median": sorted(data_points)[2],
                      "stddev": 0.001, "min": min(data_points), "rounds": len(data_points), "iterations": 1,
                      "data": data_points},
            "extra_info": {"batch_size": 8, "mode": "infer", "backend": "tensorflow", "input_shape": [32, 32, 16]},
        }],
    }
    path.write_text(json.dumps(payload))


def test_benchmark_json_becomes_sweep_rows(tmp_path):
    source, out = tmp_path / "bench.json", tmp_path / "bench.csv"
    _benchmark_json(source, [0.010, 0.011, 0.012, 0.013, 0.020])
    assert main(["convert-benchmarks", str(source), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns[: len(REQUIRED_COLUMNS)]) == list(REQUIRED_COLUMNS)
    row = frame.iloc[0]
    assert row["model"] == "test_conv_bn_relu" and row["status"] == "ok" and row["host"] == "bench-host"
    assert row["latency_ms_p50"] == 12.0
    assert abs(row["latency_ms_p90"] - 17.2) < 1e-6  # linear interpolation between 13 and 20 ms
    assert abs(row["samples_per_s"] - 8 / 0.0132) < 1e-3
    assert row["git_commit"] == "0123456789ab"


def test_malformed_benchmark_json_exits_2(tmp_path, capsys):
    source, out = tmp_path / "bad.json", tmp_path / "bad.csv"
    source.write_text("{not json")
    assert main(["convert-benchmarks", str(source), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("kbench: error: malformed JSON")
    source.write_text(json.dumps({"benchmarks": [{"name": "x"}]}))
    assert main(["convert-benchmarks", str(source), "--out", str(out)]) == 2
    assert not out.exists()


def test_out_is_replaced_only_with_force(tmp_path, capsys):
    source, out = tmp_path / "bench.json", tmp_path / "bench.csv"
    _benchmark_json(source, [0.010, 0.011, 0.012, 0.013, 0.020])
    out.write_text("eight rows of an earlier sweep\n")
    assert main(["convert-benchmarks", str(source), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "eight rows of an earlier sweep\n"
    link = tmp_path / "link.csv"
    link.symlink_to(out)
    assert main(["convert-benchmarks", str(source), "--out", str(link), "--force"]) == 0
    assert link.is_symlink() and len(pd.read_csv(out)) == 1  # written through the link
