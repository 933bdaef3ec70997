"""Test-only: one configuration made really slower in every kbench process that starts with this
directory on ``PYTHONPATH`` and ``KBENCH_TEST_SLOWDOWN=MODEL:BATCH:MODE=FRACTION`` set (e.g.
``resnet18:8:train=0.4``).

Python imports ``sitecustomize`` at start-up, so the sweep's workers and the workers of
``kbench nightly``'s re-measurement (which inherit the environment) all get it: the slowdown is
a property of the code under test, as a real regression would be, not an edit of a CSV. When
``kbench.running.timing`` is imported, its ``prepare`` is wrapped: the matching configuration's
step pauses after each call for ``FRACTION / (1 - FRACTION)`` times that call's own duration, so
its throughput falls by FRACTION whatever the machine's load does meanwhile. Nothing of kbench
reads this variable; the product is unchanged.
"""

import os

_SPEC = os.environ.get("KBENCH_TEST_SLOWDOWN", "")

if _SPEC:
    import importlib.abc
    import importlib.util
    import sys
    import time

    _key, _, _fraction = _SPEC.partition("=")
    _MODEL, _BATCH, _MODE = _key.split(":")
    _PAUSE = float(_fraction) / (1.0 - float(_fraction))

    def _wrap(timing):
        original = timing.prepare

        def prepare(cfg, **options):
            model, step, sync = original(cfg, **options)
            if (cfg["request"]["model"], str(cfg["batch_size"]), cfg["mode"]) != (_MODEL, _BATCH, _MODE):
                return model, step, sync

            def slowed_step():
                started = time.perf_counter()
                out = step()
                sync(out)
                time.sleep(_PAUSE * (time.perf_counter() - started))
                return out

            return model, slowed_step, sync

        timing.prepare = prepare

    class _PatchTiming(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "kbench.running.timing":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run_module = spec.loader.exec_module

            def exec_module(module):
                run_module(module)
                _wrap(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _PatchTiming())
