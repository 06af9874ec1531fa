"""ONNX Resize (and Upsample, its opset 7-9 predecessor, nearest mode): the common 2-D image resize as the
graph op `resize2d`, everything else as one constant interpolation matrix per resized axis.

`resize2d` (nearest or bilinear over H and W of an NCHW float tensor, ir/graph/ops/resize.py) is one fused
op that takes symbolic H and W. Its coordinate formulas use scale = out / in, which is ONNX's scale when
`sizes` is given; with `scales` it is used only when the given scale equals out / in (in float32, the
precision onnxruntime computes in), e.g. an integer upscale, which also works for symbolic H and W.

Every Resize mode (nearest with each rounding rule, linear, cubic, antialiasing, every coordinate
transformation) is separable and linear in the data along each axis, so resizing axis `a` from L_in to
L_out is a matmul with an (L_in, L_out) matrix. The matrix is computed at import time by running onnx's
reference 1-D interpolation on the identity, which makes the semantics exactly the reference's; the model
gets a permute, a matmul and a permute per axis, which the kernels handle well. Input and output sizes
of resized axes must be static; tf_crop_and_resize with a non-zero extrapolation value (affine, not
linear) is refused.
"""

from __future__ import annotations

import numpy as np

from shapeflow.frontend.onnx.context import Context, Node
from shapeflow.frontend.onnx.registry import converter
from shapeflow.ir.graph import op
from shapeflow.ir.graph.expr import Constant
from shapeflow.ir.graph.ops import make_call
from shapeflow.ir.graph.ops.resize import COORDINATE_MODES, ROUNDING_METHODS
from shapeflow.ir.graph.shape import as_int


def _optional(value):
    return None if value is None or value.size == 0 else value


def _coefficients(node: Node, mode: str, antialias: bool):
    from onnx.reference.ops import op_resize as R  # noqa: PLC0415

    if mode == "nearest":
        if antialias:
            raise node.unsupported("antialias with mode 'nearest'")
        nearest = node.attr("nearest_mode", "round_prefer_floor")
        return lambda ratio, scale: R._nearest_coeffs(ratio, mode=nearest)
    if mode == "linear":
        return R._linear_coeffs_antialias if antialias else R._linear_coeffs
    if mode == "cubic":
        a = node.attr("cubic_coeff_a", -0.75)
        fn = R._cubic_coeffs_antialias if antialias else R._cubic_coeffs
        return lambda ratio, scale: fn(ratio, scale, A=a)
    raise node.unsupported(f"mode {mode!r}")


def _sizes_and_scales(node: Node, shape: list[int], axes: list[int], scales, sizes):
    """Per-axis (scale, output size) as onnx's reference computes them."""
    rank = len(shape)
    if sizes is not None:
        out = list(shape)
        for i, a in enumerate(axes):
            out[a] = int(sizes[i])
        factors = [out[i] / shape[i] for i in range(rank)]
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            picked = [factors[a] for a in axes]
            scale = min(picked) if policy == "not_larger" else max(picked)
            factors = [scale if i in axes else 1.0 for i in range(rank)]
            out = [int(scale * shape[i] + 0.5) if i in axes else shape[i] for i in range(rank)]
        return factors, out
    node.attr("keep_aspect_ratio_policy")
    factors = [1.0] * rank
    for i, a in enumerate(axes):
        factors[a] = float(scales[i])
    return factors, [int(f * d) for f, d in zip(factors, shape)]


def _resize2d_sizes(node: Node, shape: list, axes: list[int], scales, sizes) -> list | None:
    """(out_h, out_w) when Resize is resize2d's scale = out / in resize of H and W, else None."""
    if len(shape) != 4 or any(a not in (2, 3) for a in axes):
        return None
    policy = node.attr("keep_aspect_ratio_policy", "stretch")
    out = []
    for a in (2, 3):
        n_in = as_int(shape[a])
        if a not in axes:
            out.append(shape[a])
            continue
        i = axes.index(a)
        if sizes is not None and policy == "stretch":
            out.append(int(sizes[i]))
            continue
        if sizes is not None:
            return None  # keep_aspect_ratio_policy: a common scale, rarely out / in of both axes
        scale = np.float32(scales[i])
        if n_in is None:
            if scale < 1 or scale != int(scale):
                return None  # floor(scale * H) / H is not the scale for every H
            out.append(shape[a] * int(scale))
            continue
        n_out = int(float(scales[i]) * n_in)
        if n_out < 1 or np.float32(n_out) / np.float32(n_in) != scale:
            return None
        out.append(n_out)
    return out


def _as_resize2d(ctx: Context, node: Node, name: str, shape: list, axes: list[int], scales, sizes):
    """The Resize as one resize2d call, or None when resize2d does not express it."""
    mode = node.attr("mode", "nearest")
    transform = node.attr("coordinate_transformation_mode", "half_pixel")
    rounding = node.attr("nearest_mode", "round_prefer_floor")
    if (
        mode not in ("nearest", "linear")
        or node.attr("antialias", 0)
        or transform not in COORDINATE_MODES
        or (mode == "nearest" and rounding not in ROUNDING_METHODS)
        or str(ctx.dtype(name)) != "float32"
    ):
        return None
    out = _resize2d_sizes(node, shape, axes, scales, sizes)
    if out is None:
        return None
    for attr in ("cubic_coeff_a", "exclude_outside", "extrapolation_value"):
        node.attr(attr)  # only read by cubic and tf_crop_and_resize, which resize2d never takes
    attrs = {
        "size": tuple(out),
        "method": mode,
        "coordinate_transformation_mode": transform,
        "rounding_method": rounding,
    }
    return make_call("resize2d", [ctx.expr(name)], attrs)


@converter("Resize", since=13)
def _resize(ctx: Context, node: Node):
    name = node.inputs[0]
    shape = list(ctx.shape(name))
    scales = _optional(ctx.const(node, 2, "scales"))
    sizes = _optional(ctx.const(node, 3, "sizes"))
    if (scales is None) == (sizes is None):
        raise node.unsupported("exactly one of scales and sizes must be given")
    rank = len(shape)
    axes = node.attr("axes")
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    # Axes that keep their size need no work: drop them, so that an NCHW resize of H and W is 2-D (not
    # under a keep_aspect_ratio_policy, whose common scale depends on every listed axis).
    stretch = node.attr("keep_aspect_ratio_policy", "stretch") == "stretch"
    keep = [
        i
        for i, a in enumerate(axes)
        if not stretch
        or not (
            (sizes is not None and as_int(shape[a]) == int(sizes[i]))
            or (scales is not None and float(scales[i]) == 1.0)
        )
    ]
    if node.attr("coordinate_transformation_mode", "half_pixel") != "tf_crop_and_resize":
        picked = [axes[i] for i in keep]
        fused = _as_resize2d(
            ctx,
            node,
            name,
            shape,
            picked,
            None if scales is None else scales[keep],
            None if sizes is None else sizes[keep],
        )
        if fused is not None:
            ctx.const(node, 1, "roi")  # ignored by every mode but tf_crop_and_resize
            return fused
    return _resize_by_matrices(ctx, node, name, [as_int(d) for d in shape], axes, scales, sizes)


def _resize_by_matrices(ctx: Context, node: Node, name: str, shape: list, axes: list[int], scales, sizes):
    from onnx.reference.ops import op_resize as R  # noqa: PLC0415

    dtype = ctx.dtype(name)
    roi = _optional(ctx.const(node, 1, "roi"))
    rank = len(shape)
    if any(shape[a] is None for a in axes):
        raise node.unsupported("resizing a symbolic dimension is not supported")
    mode = node.attr("mode", "nearest")
    transform = node.attr("coordinate_transformation_mode", "half_pixel")
    extrapolation = node.attr("extrapolation_value", 0.0)
    if transform == "tf_crop_and_resize" and extrapolation != 0.0:
        raise node.unsupported("tf_crop_and_resize with a non-zero extrapolation_value")
    coeffs = _coefficients(node, mode, bool(node.attr("antialias", 0)))
    exclude = bool(node.attr("exclude_outside", 0))
    full = [d if d is not None else 1 for d in shape]
    factors, out_sizes = _sizes_and_scales(node, full, axes, scales, sizes)
    if roi is not None:
        full_roi = [0.0] * rank + [1.0] * rank
        for i, a in enumerate(axes):
            full_roi[a], full_roi[rank + a] = roi[i], roi[len(axes) + i]
        roi = full_roi

    x = ctx.expr(name)
    compute = "float64" if dtype.is_integer or str(dtype) == "float64" else str(dtype)
    if dtype.is_integer:
        x = op.astype(x, compute)
    elif not dtype.is_float:
        raise node.unsupported(f"dtype {dtype}")
    for a in axes:
        if factors[a] == 1.0 and out_sizes[a] == shape[a] and roi is None:
            continue
        axis_roi = None if roi is None else [roi[a], roi[a + rank]]
        matrix = R._interpolate_1d_along_axis(
            np.eye(shape[a]),
            0,
            float(factors[a]),
            int(out_sizes[a]),
            coeffs,
            roi=axis_roi,
            exclude_outside=exclude,
            extrapolation_value=0.0,
            coordinate_transformation_mode=transform,
        )  # (L_out, L_in): column i is the response to the unit vector e_i
        weights = Constant.from_array(np.ascontiguousarray(matrix.T).astype(np.dtype(compute)))
        perm = [d for d in range(rank) if d != a] + [a]
        back = [perm.index(d) for d in range(rank)]
        x = ctx.emit(op.permute_dims(op.matmul(op.permute_dims(x, tuple(perm)), weights), tuple(back)))
    if dtype.is_integer:
        info = np.iinfo(dtype.to_numpy())
        x = op.astype(op.clip(op.round(x), float(info.min), float(info.max)), str(dtype))
    return x


# -- Upsample (opsets 7 to 9; Resize replaced it at 10) ---------------------------------------------------


def _upsample(ctx: Context, node: Node, scales) -> object:
    """Nearest upsampling: output index i along an axis reads input index floor(i / scale) (Resize with
    asymmetric coordinates and floor rounding). An NCHW integer upscale of H and W is one resize2d (which
    takes symbolic H and W); otherwise one take of constant indices per scaled axis (static axes)."""
    mode = node.attr("mode", "nearest")
    if mode != "nearest":
        raise node.unsupported(f"mode {mode!r} is not supported (nearest only)")
    name = node.inputs[0]
    shape = list(ctx.shape(name))
    scales = [float(s) for s in np.asarray(scales, dtype=np.float64).reshape(-1)]
    if len(scales) != len(shape):
        raise node.unsupported(f"scales has {len(scales)} entries for a rank-{len(shape)} input")
    integer = all(s >= 1 and s == int(s) for s in scales)
    if len(shape) == 4 and integer and scales[:2] == [1.0, 1.0] and str(ctx.dtype(name)) == "float32":
        size = tuple(shape[a] * int(scales[a]) for a in (2, 3))
        attrs = {
            "size": size,
            "method": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "rounding_method": "floor",
        }
        return make_call("resize2d", [ctx.expr(name)], attrs)
    x = ctx.expr(name)
    for axis, scale in enumerate(scales):
        if scale == 1.0:
            continue
        length = as_int(shape[axis])
        if length is None:
            raise node.unsupported(f"upsampling the symbolic axis {axis} by {scale}")
        out = int(np.floor(length * scale))
        index = np.minimum(np.floor(np.arange(out) / scale), length - 1).astype(np.int64)
        x = ctx.emit(op.take(x, Constant.from_array(index), axis))
    return x


@converter("Upsample", since=7)
def _upsample7(ctx: Context, node: Node):
    return _upsample(ctx, node, node.attr("scales"))


@converter("Upsample", since=9)
def _upsample9(ctx: Context, node: Node):
    return _upsample(ctx, node, ctx.const(node, 1, "scales"))
