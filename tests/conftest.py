import os

# FLOPs are profiled on the TensorFlow backend; tests that need another backend spawn a subprocess.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
