"""Parameters, TF-profiler FLOPs and MACs of a model, in total and per Keras layer.

Counting conventions (see also README "Counting conventions"):

* ``flops_tf``: float operations per image as the TensorFlow profiler counts them
  (``tf.compat.v1.profiler`` with ``float_operation()``) on the graph of a ``tf.function``
  traced at batch 1 with a fully static signature. Conv and matmul ops count 2 per
  multiply-accumulate; BiasAdd, BN arithmetic, pooling, softmax and the element-wise ops that
  TF has a rule for add their own terms.
* ``macs``: multiply-accumulates of Conv2D, DepthwiseConv2dNative, Conv2DBackpropInput
  (transposed conv), Conv3D, MatMul and BatchMatMul ops, i.e. their profiler FLOPs / 2. This is
  the papers' "FLOPs"/"mult-adds" convention, also torchvision's ``_ops`` and fvcore's.
* ``flops_tf_dilation_padding``: the part of ``flops_tf`` spent on the padding that TF adds
  around dilated convolutions (SpaceToBatchND) when the rate does not divide the map.
* ``mem_access``: memory access cost in ShuffleNet V2's sense (elements read + written per
  image; see ``kbench.counting.memory_cost``). Not to be confused with ``macs``.
* ``activations``: output elements of conv/matmul (dense) layers per image (fvcore's
  ``ActivationCountAnalysis``, timm's "macts"; ``kbench.counting.activations``).
* ``convention_flops`` (with a ``convention``): that named convention's count of the chosen
  ``part`` of the model (``kbench.counting.conventions``; ``kbench conventions`` lists them).
* ``uncounted_ops``: op types in the graph that compute something but have no FLOP rule
  (activations such as Relu, Einsum, resizes, unresolved function calls, gathers at computed
  positions such as RoIAlign's sampling), with node counts.

Grouped convolutions: Keras' TensorFlow backend runs ``Conv2D(groups>1)`` inside a nested
XLA-compiled function, which the profiler sees as an opaque ``StatefulPartitionedCall``
worth 0. We rebuild each such function body from the graph's function library, with the
call's input shapes and the captured variables' shapes, and count its ops with the same TF
rules; the FLOPs land in the calling layer. A call that cannot be resolved is listed in
``uncounted_ops``.

Per-layer rows (``per_layer=True``) follow each graph node's TF name scope to its Keras layer. A
nested Functional model is replaced by its own layers, named by their path (``backbone/conv1``,
as in ``kbench.counting.layer_walk``); a nested model called several times accumulates every call on
those rows. The rows sum to the totals.

Any Keras model can be profiled: a Sequential model is profiled as the Functional model of its
layers, and a subclassed model as one layer of a Functional wrapper (its per-layer table has one
row; its ``mem_access`` is not computed (None), as the walk needs a graph of layers; the same
holds for any model with a subclassed model inside).

Profiling always runs on the TensorFlow backend: FLOPs describe the graph, not a device.
"""

from __future__ import annotations

import collections
import re
from typing import Any

from kbench.counting.activations import count_activations
from kbench.errors import UsageError
from kbench.counting.layer_walk import count_params, flat_layers, is_nested_model, layer_calls
from kbench.counting.memory_cost import memory_access_cost
from kbench.counting.sizes import estimate_sizes
from kbench.models.session import forget_models
from kbench.models.views import functional_view

# Ops whose profiler FLOPs are 2 x multiply-accumulates.
MAC_OP_TYPES = frozenset({
    "Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput",
    "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3",
})

# Ops that move, reshape or bookkeep data: no arithmetic, so 0 FLOPs by any convention.
DATA_MOVEMENT_OPS = frozenset({
    "Placeholder", "Const", "Identity", "IdentityN", "NoOp", "ReadVariableOp", "VarHandleOp",
    "Reshape", "Squeeze", "ExpandDims", "ConcatV2", "Concat", "Pack", "Unpack", "Split", "SplitV",
    "Slice", "StridedSlice", "Pad", "PadV2", "MirrorPad", "Transpose", "Shape", "ShapeN", "Size",
    "Rank", "Cast", "Fill", "Range", "Tile", "GatherV2", "GatherNd", "ZerosLike", "OnesLike",
    "StopGradient", "BroadcastTo", "BroadcastArgs", "Reverse", "ReverseV2", "DepthToSpace",
    "SpaceToDepth", "Bitcast", "EnsureShape", "CheckNumerics", "Snapshot", "PreventGradient",
})

CALL_OP_TYPES = frozenset({"StatefulPartitionedCall", "PartitionedCall"})

# Gathers are data movement when their indices are fixed at trace time; with indices computed
# from the input (RoIAlign's bilinear sampling, top-k proposal selection) they are listed in
# ``uncounted_ops`` as e.g. ``GatherV2[computed indices]``: work no FLOP rule covers.
GATHER_OP_TYPES = frozenset({"GatherV2", "GatherNd", "ResourceGather"})
COMPUTED_INDICES = "[computed indices]"

OTHER_ROW = "(outside any layer)"


def _tf():
    from kbench.common.quiet import quiet_import

    return quiet_import("tensorflow")


def trace_graph(model, input_shape):
    """Trace ``model`` at batch 1 with a static signature; return the traced graph.

    The graph ``tf.function(...).get_concrete_function(spec).graph`` would hold (the same ops),
    built without making it a callable function: a concrete function serialises its whole graph
    to a FunctionDef when it is created, which for a detector costs twice the tracing itself."""
    tf = _tf()
    from tensorflow.python.framework.func_graph import func_graph_from_py_func

    spec = tf.TensorSpec([1, *input_shape], tf.float32)
    return func_graph_from_py_func("kbench_profile", lambda x: model(x, training=False), [spec], {})


class _FunctionLibrary:
    """The graph's function definitions (name -> FunctionDef), read only when a call op needs one:
    serialising a graph costs as much as tracing it when it holds large constants."""

    def __init__(self, graph):
        self._graph = graph
        self._functions = None

    def get(self, name):
        if self._functions is None:
            self._functions = {f.signature.name: f for f in self._graph.as_graph_def().library.function}
        return self._functions.get(name)


class _GraphCounter:
    """Counts FLOPs per op of a graph with TensorFlow's registered statistics (the ``flops``
    statistics that ``tf.compat.v1.profiler`` sums: ``profiler_total_flops``)."""

    def __init__(self, graph, library: _FunctionLibrary):
        tf = _tf()
        from tensorflow.python.framework import ops as tf_ops

        self._tf = tf
        self._get_stats = tf_ops.get_stats_for_node_def
        self.graph = graph
        self.library = library

    def count(self):
        """Yield ``(node_name, op_type, flops or None, nested, useful_flops)``; None: "no rule".

        ``nested`` marks ops counted inside a resolved function call (invisible to the profiler);
        ``useful_flops`` excludes work on padding (see ``_useful_flops``).
        """
        for op in self.graph.get_operations():
            if op.type == "Const":  # no FLOP rule; its NodeDef (the constant's content) is never serialised
                yield op.name, op.type, None, False, None
                continue
            if op.type in CALL_OP_TYPES:
                yield from self._count_call(op)
                continue
            if op.type in GATHER_OP_TYPES and self._has_computed_indices(op):
                # Sampling at positions the model computes (RoIAlign, proposal selection): the
                # arithmetic that picks the positions is counted, the sampling is not.
                yield op.name, f"{op.type}{COMPUTED_INDICES}", None, False, None
                continue
            stats = self._get_stats(self.graph, op.node_def, "flops")
            flops = int(stats.value) if stats.value is not None else None
            yield op.name, op.type, flops, False, self._useful_flops(op, flops)

    def _has_computed_indices(self, op):
        """True when a gather's indices depend on the model's input (sampling at computed
        positions); indices fixed at trace time (a channel shuffle's permutation, even after
        Keras' negative-index arithmetic) make it data movement."""
        tf = self._tf
        pending = [op.inputs[1].op]
        seen = set()
        while pending:
            op = pending.pop()
            if op.name in seen:
                continue
            seen.add(op.name)
            if op.type == "Placeholder" and op.outputs[0].dtype != tf.resource:
                return True
            pending.extend(tensor.op for tensor in op.inputs)
        return False

    def _useful_flops(self, op, flops):
        """FLOPs that produce the model's output, for MACs in the papers' convention.

        TF runs a dilated convolution whose rate does not divide the map as
        SpaceToBatchND -> Conv2D -> BatchToSpaceND on a padded map; the profiler counts the
        padding (it is executed), the papers do not. Scale by the cropped output's share.
        """
        if flops is None or op.type not in MAC_OP_TYPES:
            return flops
        output = op.outputs[0]
        for consumer in output.consumers():
            if consumer.type == "BatchToSpaceND":
                produced = output.shape.num_elements()
                kept = consumer.outputs[0].shape.num_elements()
                if produced and kept is not None and kept < produced:
                    return flops // produced * kept
        return flops

    # -- nested function calls (grouped convolutions) -------------------------------------
    def _count_call(self, op):
        fdef = self.library.get(op.get_attr("f").name)
        resolved = self._resolve(fdef, op) if fdef is not None else None
        if resolved is None:
            yield op.name, op.type, None, False, None
            return
        for _inner_name, op_type, flops, _, useful in _GraphCounter(resolved, self.library).count():
            # Inner ops are attributed to the calling op's scope (its Keras layer).
            yield op.name, op_type, flops, True, useful

    def _resolve(self, fdef, op):
        tf = self._tf
        from tensorflow.python.framework.function_def_to_graph import function_def_to_graph
        from tensorflow.python.ops import handle_data_util

        inputs = list(op.inputs)
        if len(inputs) != len(fdef.signature.input_arg):
            return None
        input_shapes, variable_shapes = [], {}
        for arg, tensor in zip(fdef.signature.input_arg, inputs):
            if tensor.dtype == tf.resource:
                data = handle_data_util.get_resource_handle_data(tensor)
                if not data.is_set or not data.shape_and_type:
                    return None
                st = data.shape_and_type[0]
                variable_shapes[arg.name] = (tf.TensorShape(st.shape), tf.as_dtype(st.dtype))
                input_shapes.append(tf.TensorShape([]))
            else:
                if not tensor.shape.is_fully_defined():
                    return None
                input_shapes.append(tensor.shape)
        body = function_def_to_graph(fdef, input_shapes=input_shapes)
        body_def = body.as_graph_def()
        resolved = tf.Graph()
        with resolved.as_default():
            # Re-import the body with each variable read replaced by a placeholder of the
            # variable's shape, so that shape inference (and the FLOP rules) see real shapes.
            input_map = {}
            for op in body.get_operations():
                if op.type == "ReadVariableOp" and op.inputs[0].op.name in variable_shapes:
                    shape, dtype = variable_shapes[op.inputs[0].op.name]
                    input_map[f"{op.name}:0"] = tf.compat.v1.placeholder(dtype, shape)
            tf.graph_util.import_graph_def(body_def, input_map=input_map, name="")
        return resolved


def profiler_total_flops(graph) -> int:
    """The root total of ``tf.compat.v1.profiler.profile`` with ``float_operation()``."""
    tf = _tf()
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    result = tf.compat.v1.profiler.profile(graph=graph, run_meta=None, cmd="scope", options=options)
    return int(result.total_float_ops)


_SUFFIX = re.compile(r"_\d+$")


class _LayerScopes:
    """Maps a graph node's name scope to its Keras layer, nested Functional models walked into.

    TF scopes are ``outer_1/backbone_1/conv1_1/convolution``: the model's layer names with
    ``_N`` suffixes where a scope name was reused. A layer of a nested model is named by its
    path, ``backbone/conv1`` (as in ``kbench.counting.layer_walk``).
    """

    def __init__(self, model):
        self._layers = {}  # qualified prefix ("" or "backbone/") -> {layer name: layer}
        self._index(model, "")

    def _index(self, model, prefix):
        self._layers[prefix] = {layer.name: layer for layer in model.layers}
        for layer in model.layers:
            if is_nested_model(layer):
                self._index(layer, f"{prefix}{layer.name}/")

    def _find(self, prefix, part):
        names = self._layers[prefix]
        if part in names:
            return names[part]
        return names.get(_SUFFIX.sub("", part))

    def layer_of(self, node_name: str) -> str:
        """The qualified layer name of a node; ops in a nested model's scope but in none of its
        layers go to the nested model's name; ops outside every layer to ``OTHER_ROW``."""
        prefix = ""
        for part in node_name.split("/")[1:-1] or node_name.split("/")[:-1]:
            layer = self._find(prefix, part)
            if layer is None:
                continue
            if is_nested_model(layer):
                prefix = f"{prefix}{layer.name}/"
                continue
            return f"{prefix}{layer.name}"
        return prefix.rstrip("/") or OTHER_ROW


def count_graph(graph, scopes=None) -> dict[str, Any]:
    """FLOPs of a traced graph with TF's per-op rules (see the module docstring): totals, and with
    ``scopes`` (a ``_LayerScopes``) per Keras layer."""
    flops_by_op = collections.Counter()
    uncounted = collections.Counter()
    layer_flops = collections.Counter()
    layer_macs = collections.Counter()
    layer_uncounted = collections.defaultdict(collections.Counter)
    macs = outer_flops = padding_flops = 0
    for node_name, op_type, flops, nested, useful_flops in _GraphCounter(graph, _FunctionLibrary(graph)).count():
        if flops is None:
            if op_type not in DATA_MOVEMENT_OPS:
                uncounted[op_type] += 1
                if scopes is not None:
                    layer_uncounted[scopes.layer_of(node_name)][op_type] += 1
            continue
        flops_by_op[op_type] += flops
        outer_flops += 0 if nested else flops
        padding_flops += flops - useful_flops
        node_macs = useful_flops // 2 if op_type in MAC_OP_TYPES else 0
        macs += node_macs
        if scopes is not None:
            layer = scopes.layer_of(node_name)
            layer_flops[layer] += flops
            layer_macs[layer] += node_macs
    return {"flops_by_op": flops_by_op, "uncounted": uncounted, "macs": macs, "outer_flops": outer_flops,
            "padding_flops": padding_flops, "layer_flops": layer_flops, "layer_macs": layer_macs,
            "layer_uncounted": layer_uncounted}


def profile_model(model, input_shape, *, per_layer: bool = False, convention=None, part: str = "whole") -> dict[str, Any]:
    """Profile an already built model (see module docstring for the conventions). ``convention``
    (a ``kbench.counting.conventions.Convention``) adds ``convention``, ``part`` and ``convention_flops``.

    The model is traced once (every FLOP count) and walked once (``layer_walk.layer_calls``: every
    analytic count: memory access, activations, the convention)."""
    model = functional_view(model, input_shape)
    calls = layer_calls(model)
    graph = trace_graph(model, input_shape)
    from_trace = convention is not None and convention.from_profile is not None
    try:
        counted_graph = count_graph(graph, _LayerScopes(model) if per_layer or from_trace else None)
    except ValueError as exc:  # a FLOP rule met an unknown dimension: never a silent 0
        raise RuntimeError(f"profiler could not count {model.name}: {exc}") from exc
    flops_by_op = counted_graph["flops_by_op"]
    flops_tf = int(sum(flops_by_op.values()))
    record: dict[str, Any] = {
        "model": model.name,
        "input_shape": list(input_shape),
        **count_params(model),
        "macs": int(counted_graph["macs"]),
        "flops_tf": flops_tf,
        # FLOPs inside function calls the profiler sees as opaque (grouped convolutions).
        "flops_tf_nested_calls": flops_tf - counted_graph["outer_flops"],
        # Part of flops_tf that TF spends convolving the padding of dilated convolutions
        # (SpaceToBatchND); executed work, but no MACs in the papers' convention.
        "flops_tf_dilation_padding": int(counted_graph["padding_flops"]),
        "flops_by_op": dict(sorted(flops_by_op.items(), key=lambda kv: -kv[1])),
        "uncounted_ops": dict(sorted(counted_graph["uncounted"].items())),
    }
    record.update(estimate_sizes(model, input_shape, calls))
    memory = memory_access_cost(model, calls=calls)
    record["mem_access"] = memory["total"]
    activations = count_activations(model, calls=calls)
    record["activations"] = activations.total
    counted = None
    if convention is not None:
        if from_trace:
            counted = convention.from_profile(model, counted_graph["layer_flops"], record["uncounted_ops"], part)
        else:
            counted = convention.count(model, input_shape, part, calls=calls)
        record.update(convention=convention.name, part=part, convention_flops=counted.total)
    if per_layer:
        record["per_layer"] = _per_layer_rows(model, counted_graph["layer_flops"], counted_graph["layer_macs"],
                                              memory["per_layer"], counted_graph["layer_uncounted"],
                                              activations.per_layer, counted.per_layer if counted else None)
    return record


def _shape_of(tensors):
    """[h, w, c] of a layer's (first) input or output tensor without the batch axis; None if unknown."""
    if isinstance(tensors, (list, tuple)):
        tensors = tensors[0] if tensors else None
    try:
        return list(tensors.shape[1:])
    except (AttributeError, ValueError, TypeError):
        return None


def _layer_tensor_shape(layer, which):
    try:
        return _shape_of(getattr(layer, which))
    except (AttributeError, ValueError):  # a layer called several times has no single input/output
        return None


def _per_layer_rows(model, layer_flops, layer_macs, layer_memory, layer_uncounted=None, layer_activations=None,
                    layer_convention=None):
    """One row per layer, nested Functional models replaced by their layers (``backbone/conv1``);
    the rows sum to the record's totals. ``uncounted_ops``: the op types without a FLOP rule that
    ran in the layer's scope (activations, resizes...), with node counts."""
    layer_uncounted = layer_uncounted or {}
    rows = []
    for name, layer in flat_layers(model):
        rows.append({
            "name": name,
            "type": type(layer).__name__,
            "input_shape": _layer_tensor_shape(layer, "input"),
            "output_shape": _layer_tensor_shape(layer, "output"),
            "params": count_params(layer)["params"] if layer.built else 0,
            "macs": int(layer_macs.get(name, 0)),
            "flops_tf": int(layer_flops.get(name, 0)),
            "mem_access": int(layer_memory.get(name, 0)) if layer_memory else None,
            "uncounted_ops": dict(sorted(layer_uncounted.get(name, {}).items())),
            "activations": int((layer_activations or {}).get(name, 0)),
            **({"convention_flops": int(layer_convention.get(name, 0))} if layer_convention is not None else {}),
        })
    # Ops in a nested model's scope outside its layers (none in the zoo so far), then the rest.
    listed = {row["name"] for row in rows}
    scoped = set(layer_flops) | set(layer_macs) | set(layer_uncounted)
    leftovers = sorted(n for n in scoped if n not in listed and n != OTHER_ROW)
    for name in leftovers + [OTHER_ROW]:
        if layer_flops.get(name) or layer_macs.get(name) or layer_uncounted.get(name):
            rows.append({"name": name, "type": "" if name == OTHER_ROW else "(nested model)", "input_shape": None,
                         "output_shape": None, "params": 0, "macs": int(layer_macs.get(name, 0)),
                         "flops_tf": int(layer_flops.get(name, 0)), "mem_access": 0, "activations": 0,
                         "uncounted_ops": dict(sorted(layer_uncounted.get(name, {}).items())),
                         **({"convention_flops": 0} if layer_convention is not None else {})})
    return rows


PER_LAYER_SUMS = ("params", "macs", "flops_tf", "mem_access", "activations", "convention_flops")


def layer_group(name: str, depth: int) -> str:
    """The group of a per-layer row at ``depth`` levels of the name hierarchy, as fvcore's
    ``max_depth`` and torchinfo's ``depth`` group modules: a nested model's path (``backbone/``)
    gives levels, then the layer name's ``_``-separated parts, as the zoo (and Keras Applications)
    name layers: ``conv2_block1_1_conv`` is in ``conv2`` at depth 1 and ``conv2_block1`` at depth 2.
    Rows named in parentheses (``(outside any layer)``) are their own group."""
    if name.startswith("("):
        return name
    *models, layer = name.split("/")
    levels = [*models, *layer.split("_")]
    kept = levels[:depth]
    nested = kept[:len(models)]
    parts = kept[len(models):]
    return "/".join(nested + (["_".join(parts)] if parts else []))


def group_per_layer(rows, depth: int | None = None, pattern=None):
    """Per-layer rows grouped (``None``, ``None``: every layer): at ``depth`` levels of the name
    hierarchy (``layer_group``), or by ``pattern`` (a compiled regex: a row's group is what it
    matches in the row's name, its first group if it has one; rows it does not match are one
    ``(other)`` group). A group sums the counts of its rows, keeps the first input shape and the
    last output shape, and is listed where its first row was; the groups sum to the totals."""
    if depth is None and pattern is None:
        return list(rows)
    grouped: dict[str, dict] = {}
    members: dict[str, int] = collections.Counter()
    for row in rows:
        key = layer_group(row["name"], depth) if pattern is None else _pattern_group(row["name"], pattern)
        members[key] += 1
        group = grouped.get(key)
        if group is None:
            grouped[key] = {**row, "name": key, "uncounted_ops": dict(row.get("uncounted_ops") or {})}
            continue
        for column in PER_LAYER_SUMS:
            if row.get(column) is not None and group.get(column) is not None:
                group[column] += row[column]
        group["output_shape"] = row.get("output_shape") or group.get("output_shape")
        ops = collections.Counter(group["uncounted_ops"])
        ops.update(row.get("uncounted_ops") or {})
        group["uncounted_ops"] = dict(sorted(ops.items()))
    for key, group in grouped.items():
        if members[key] > 1:
            group["type"] = f"{members[key]} layers"
    return list(grouped.values())


def _pattern_group(name: str, pattern) -> str:
    match = pattern.search(name)
    key = None if match is None else match.group(1) if pattern.groups else match.group(0)
    return key or "(other)"


def require_tensorflow_backend():
    """Profiling traces a TF graph: refuse other backends with a usage error (exit 2)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UsageError(
            f"profiling needs the TensorFlow backend (KERAS_BACKEND={keras.backend.backend()!r}); "
            "FLOPs are device-independent, run 'kbench profile' with KERAS_BACKEND=tensorflow")


def profile(request, per_layer: bool = False, convention=None, part: str = "whole") -> dict[str, Any]:
    """Build the model of a resolved ``registry.ModelRequest`` and profile it (see ``profile_model``).

    The request was validated where it was made (``registry.resolve``); nothing is re-checked here.
    """
    require_tensorflow_backend()
    model = request.build()
    record = profile_model(model, request.input_shape, per_layer=per_layer, convention=convention, part=part)
    record["model"] = request.name
    record["family"] = request.family
    record["variant"] = dict(request.variant)
    if getattr(request.spec, "kind", None) != "object":  # not under a caller's own model object
        forget_models()
    return record
