"""kbench's version: one place, read by the package face, the environment record and packaging."""

__version__ = "0.1.0"
