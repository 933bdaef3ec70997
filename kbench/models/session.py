"""Forgetting the models built before: Keras' global state and the garbage they leave.

A Keras model is a web of reference cycles, so dropping one frees little until the garbage
collector runs; ``keras.backend.clear_session()`` runs a full collection for that. A full
collection traverses every object the process holds, and with TensorFlow and Keras imported that
is about 400,000 objects and 0.25 s on this project's 2-core machine, paid at every model. In a
process that kbench owns (the CLI, a worker, the test suite: ``own_process()``), what survives
the first collection (the frameworks, imported once for the process's life) is moved out of the
collector's sight (``gc.freeze``), once, so every later collection traverses only what was
allocated since: 0.01-0.03 s after a ResNet-50. Only once: an object frozen is never collected,
and what a process keeps for a while (a fixture's model) must still be collected when dropped.
In anyone else's process (the Python API in a user's notebook) nothing is frozen: freezing their
objects would keep their cyclic garbage alive.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_OWN_PROCESS = False
_FROZEN = False


def own_process() -> None:
    """Declare this process kbench's own: the first ``forget_models`` freezes what survives it."""
    global _OWN_PROCESS
    _OWN_PROCESS = True


def freeze_survivors() -> None:
    """Collect, then freeze what survived (once per process; see the module docstring)."""
    global _FROZEN
    gc.collect()
    if not _FROZEN:
        gc.freeze()
        _FROZEN = True


def forget_models() -> None:
    """Clear Keras' global state (layer-name counters, graphs), then collect the garbage of every
    model no longer referenced; in kbench's own process, the first time, freeze what survived."""
    import keras

    try:
        keras.utils.clear_session(free_memory=False)
    except TypeError:  # a Keras without the argument: it never collected
        keras.utils.clear_session()
    if _OWN_PROCESS:
        freeze_survivors()
    else:
        gc.collect()


@contextlib.contextmanager
def shapes_only() -> Iterator[None]:
    """Build models whose weights have shapes and no values, for counts that read only shapes and
    layer configurations (parameters, the analytic MACs, memory, the papers' conventions).

    Keras' ``StatelessScope`` without initialisation: a weight keeps its initializer and is never
    filled, so a ResNet-50 at 224x224 builds in 0.16 s instead of 0.84 s and a VGG's 138 million
    random numbers are never drawn. Not for anything that runs or traces the model (the TF
    profiler, timing): a weight read outside the scope would put its initializer in the graph."""
    import keras

    with keras.StatelessScope(initialize_variables=False):
        yield
