import os
import sys

import pytest

# FLOPs are profiled on the TensorFlow backend; tests that need another backend spawn a subprocess.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# The modules whose cases run sweeps and subprocesses (10-45 s each), ahead of the rest: pytest-xdist
# hands tests out in collection order, so a long case collected last (test_sweep.py, test_zoo_index.py
# come late alphabetically) would leave the other worker idle at the end of the run.
LONG_CASES_FIRST = ("tests/test_sweep.py", "tests/test_zoo_index.py", "tests/test_reproduce.py",
                    "tests/test_processes.py", "tests/test_own_model.py", "tests/test_distributed.py",
                    "tests/test_concurrency.py", "tests/test_multi_device.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: not item.nodeid.startswith(LONG_CASES_FIRST))  # stable: modules stay whole


def pytest_collection_finish(session):
    """Every test module is imported (Keras and TensorFlow with them): this process is kbench's
    own, and what it holds now lives as long as it does, out of the garbage collector's sight
    (``kbench.models.session``), so the collection after each test costs that test's objects only."""
    from kbench.models.session import freeze_survivors, own_process

    own_process()
    freeze_survivors()


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Clear Keras' global state (layer-name counters, graphs) after each test that used Keras.

    Only when Keras is already imported, so tests that never touch it stay cheap.
    """
    yield
    if "keras" in sys.modules:
        from kbench.models.session import forget_models

        forget_models()
