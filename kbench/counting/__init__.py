"""Counting: the layer walk and its rule tables (MACs, memory access, activations), the counting conventions, the TF profiler, FLOPs-vs-size fits."""
