import os
import sys

import pytest

# FLOPs are profiled on the TensorFlow backend; tests that need another backend spawn a subprocess.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
