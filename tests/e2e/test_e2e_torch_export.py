"""Models exported by torch.onnx (the TorchScript exporter, dynamic axes) compiled once and checked against
onnxruntime at several sizes: a GPT-2-style block whose reshapes and causal mask come from Shape/Gather/
Concat/ConstantOfShape/Trilu subgraphs, and a CNN with batch norm folded by the exporter. Skipped where
torch is not installed (it is not a requirement)."""

import io
import warnings

import numpy as np
import onnx
import pytest
from e2e_models import as_list, onnxruntime_outputs

import shapeflow as sf

torch = pytest.importorskip("torch")


class GPT2Block(torch.nn.Module):
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)
        self.ln1, self.ln2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.fc1, self.fc2 = torch.nn.Linear(dim, 4 * dim), torch.nn.Linear(4 * dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / (d // self.heads) ** 0.5
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
        probs = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        x = x + self.proj((probs @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


def small_cnn():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 5),
    )
    net[1].running_mean.normal_()
    net[1].running_var.uniform_(0.5, 1.5)
    return net


def export(module, example, axes):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (example,),
            buffer,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": axes, "y": {0: axes[0]}},
            dynamo=False,
            opset_version=17,
        )
    return onnx.load_from_string(buffer.getvalue())


CASES = {
    "gpt2_block": (
        GPT2Block,
        (2, 5, 32),
        {0: "batch", 1: "seq"},
        {"batch": (1, 4), "seq": (1, 32)},
        [(1, 1, 32), (3, 7, 32), (4, 32, 32)],
    ),
    "cnn": (small_cnn, (2, 3, 16, 16), {0: "batch"}, {"batch": (1, 5)}, [(1, 3, 16, 16), (5, 3, 16, 16)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_torch_export_matches_onnxruntime(name):
    make, example_shape, axes, dims, shapes = CASES[name]
    torch.manual_seed(0)
    model = export(make(), torch.randn(*example_shape), axes)
    exe = sf.compile(model, dims=dims)
    rng = np.random.default_rng(0)
    for shape in shapes:
        x = rng.standard_normal(shape).astype("float32")
        (expected,) = onnxruntime_outputs(model, {"x": x})
        (got,) = as_list(exe(x))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=f"{name} at {shape}")
