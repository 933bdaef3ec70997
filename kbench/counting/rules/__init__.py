"""MAC rules for the zoo's custom layers, one module per family of layers.

Each module decorates functions with ``kbench.counting.mac_rules.mac_rule(LayerClass)``; importing
this package registers them all (``kbench.counting.macs`` does). A new rule module is added to the
import below (``tests/test_layout.py`` checks that none is left out).
"""

from kbench.counting.rules import attention, capsule, detection, normalization, saliency, shuffle  # noqa: F401
