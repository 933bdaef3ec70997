"""``kbench`` commands run in one fresh Python process, for tests whose subject is what a new
process has (the modules it imports, the Keras classes it knows); everything else runs the CLI
in-process (``kbench.cli.main``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("keras", "tensorflow", "jax", "torch", "architectures")  # the zoo imports Keras

_SCRIPT = """
import contextlib, io, json, os, sys
from kbench.cli import main
calls, frameworks = json.loads(sys.argv[1]), json.loads(sys.argv[2])
results = []
for argv, cwd in calls:
    os.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, out.getvalue(), err.getvalue()])
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(frameworks))
print(json.dumps({"results": results, "loaded": loaded}))
"""


@dataclass
class FreshRun:
    results: list[tuple[int, str, str]]  # (exit code, stdout, stderr) of each call, in order
    loaded: set[str]  # which of FRAMEWORKS the process had imported at the end


def kbench_in_fresh_process(*calls: tuple[list[str], Path], clean_env: bool = False) -> FreshRun:
    """``kbench ARGV`` in ``cwd`` for each ``(argv, cwd)``, in order, in one fresh process.
    ``clean_env``: only PATH and PYTHONPATH (no KERAS_BACKEND or the like from the suite)."""
    env = {"PATH": "/usr/bin:/bin"} if clean_env else dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps([[list(a), str(c)] for a, c in calls]),
                           json.dumps(FRAMEWORKS)], capture_output=True, text=True, cwd=calls[0][1], env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.splitlines()[-1])
    return FreshRun([tuple(result) for result in answer["results"]], set(answer["loaded"]))
