"""MAC rules for the zoo's custom layers, one module per family of layers.

Each module decorates functions with ``kbench.macs.mac_rule(LayerClass)``. Every public
module here is imported by ``kbench.macs`` so a new rule file is picked up by existing.
"""
