"""Foundations every layer may use: CSV I/O, output paths, validation, number formatting, the environment record, devices, signals."""
