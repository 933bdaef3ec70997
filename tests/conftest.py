import os
import sys

import pytest

# FLOPs are profiled on the TensorFlow backend; tests that need another backend spawn a subprocess.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Clear Keras' global state (layer-name counters, graphs) after each test that used Keras.

    Only when Keras is already imported, so tests that never touch it stay cheap.
    """
    yield
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()
