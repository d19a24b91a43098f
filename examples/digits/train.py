"""Train the bundled example: a small CNN on scikit-learn's 8×8 handwritten digits, in NumPy.

    python examples/digits/train.py        # rewrites digits_cnn.onnx, calib.npy, test_x.npy, test_y.npy

Conv(1→8, 3×3) + BatchNorm + Relu → MaxPool 2×2 → Conv(8→16, 3×3) + Relu6 (Clip) → Flatten → Gemm(256→10)
→ Softmax. Exported as a float ONNX model (opset 13) with the BatchNormalization kept as its own
node, so the example exercises BN folding and activation fusion. Deterministic (fixed seeds).
Held-out test set: 20 % of the digits, never seen in training or calibration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
rng = np.random.default_rng(0)


def im2col(x, k=3, pad=1):
    """x [N, C, H, W] → patches [N, H, W, C·k·k] for a stride-1 'same' convolution."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.stack([xp[:, :, i : i + h, j : j + w] for i in range(k) for j in range(k)], axis=2)  # N C kk H W
    return cols.transpose(0, 3, 4, 1, 2).reshape(n, h, w, c * k * k)


def col2im(dcols, shape, k=3, pad=1):
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, k * k).transpose(0, 3, 4, 1, 2)
    dx = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for t, (i, j) in enumerate((i, j) for i in range(k) for j in range(k)):
        dx[:, :, i : i + h, j : j + w] += d[:, :, t]
    return dx[:, :, pad : pad + h, pad : pad + w]


class Net:
    def __init__(self):
        he = lambda fan_in, *s: rng.normal(0, np.sqrt(2 / fan_in), s)  # noqa: E731
        self.p = {"w1": he(9, 8, 1, 3, 3), "b1": np.zeros(8), "w2": he(72, 16, 8, 3, 3), "b2": np.zeros(16),
                  "w3": he(256, 10, 256), "b3": np.zeros(10)}  # fmt: skip

    def forward(self, x):
        p, c = self.p, {}
        c["x"] = x
        c["c1"] = im2col(x)
        z1 = c["c1"] @ p["w1"].reshape(8, -1).T + p["b1"]  # N H W 8
        a1 = np.maximum(z1, 0).transpose(0, 3, 1, 2)  # N 8 8 8
        c["z1"] = z1
        n = x.shape[0]
        win = a1.reshape(n, 8, 4, 2, 4, 2)
        m1 = win.max(axis=(3, 5))
        c["mask"] = win == m1[:, :, :, None, :, None]
        c["c2"] = im2col(m1)
        z2 = c["c2"] @ p["w2"].reshape(16, -1).T + p["b2"]  # N 4 4 16
        c["z2"] = z2
        a2 = np.clip(z2, 0, 6).transpose(0, 3, 1, 2).reshape(n, -1)  # NCHW flatten
        c["a2"] = a2
        return a2 @ p["w3"].T + p["b3"], c

    def backward(self, logits, y, c):
        p, g = self.p, {}
        n = len(y)
        prob = np.exp(logits - logits.max(1, keepdims=True))
        prob /= prob.sum(1, keepdims=True)
        d = prob
        d[np.arange(n), y] -= 1
        d /= n
        g["w3"], g["b3"] = d.T @ c["a2"], d.sum(0)
        da2 = (d @ p["w3"]).reshape(n, 16, 4, 4).transpose(0, 2, 3, 1)
        dz2 = da2 * ((c["z2"] > 0) & (c["z2"] < 6))
        g["w2"] = (dz2.reshape(-1, 16).T @ c["c2"].reshape(-1, 72)).reshape(16, 8, 3, 3)
        g["b2"] = dz2.sum((0, 1, 2))
        dm1 = col2im(dz2 @ p["w2"].reshape(16, -1), (n, 8, 4, 4))
        da1 = (c["mask"] * dm1[:, :, :, None, :, None]).reshape(n, 8, 8, 8).transpose(0, 2, 3, 1)
        dz1 = da1 * (c["z1"] > 0)
        g["w1"] = (dz1.reshape(-1, 8).T @ c["c1"].reshape(-1, 9)).reshape(8, 1, 3, 3)
        g["b1"] = dz1.sum((0, 1, 2))
        return g


def train(x, y, epochs=40, lr=0.05):
    net, vel = Net(), {}
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for k in range(0, len(x), 32):
            idx = order[k : k + 32]
            logits, cache = net.forward(x[idx])
            for name, gr in net.backward(logits, y[idx], cache).items():
                vel[name] = 0.9 * vel.get(name, 0) - lr * (gr + 1e-4 * net.p[name])
                net.p[name] += vel[name]
    return net


def export(net: Net, x_stats: np.ndarray, path: Path) -> None:
    """ONNX with conv1 split into Conv + BatchNormalization (same function), Relu, Clip as Relu6."""
    p = {k: v.astype(np.float32) for k, v in net.p.items()}
    z1 = im2col(x_stats) @ p["w1"].reshape(8, -1).T  # conv1 without bias, to give BN real statistics
    mean, var = z1.reshape(-1, 8).mean(0), z1.reshape(-1, 8).var(0) + 1e-3
    eps = 1e-5
    gamma = np.sqrt(var + eps).astype(np.float32)  # BN(conv(x)) = conv(x) - mean + mean + b1 = conv(x) + b1
    beta = (p["b1"] + mean).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for n, a in {
        "conv1.weight": p["w1"], "bn1.scale": gamma, "bn1.bias": beta, "bn1.mean": mean.astype(np.float32),
        "bn1.var": var.astype(np.float32), "conv2.weight": p["w2"], "conv2.bias": p["b2"],
        "relu6.min": np.array(0, np.float32), "relu6.max": np.array(6, np.float32),
        "fc.weight": p["w3"], "fc.bias": p["b3"]}.items()]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["image", "conv1.weight"], ["conv1"], "conv1", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["conv1", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"], ["bn1"], "bn1", epsilon=eps),
        helper.make_node("Relu", ["bn1"], ["relu1"], "relu1"),
        helper.make_node("MaxPool", ["relu1"], ["pool1"], "pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"], "conv2", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Clip", ["conv2", "relu6.min", "relu6.max"], ["relu6"], "relu6"),
        helper.make_node("Flatten", ["relu6"], ["flat"], "flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], "fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], "softmax", axis=-1),
    ]
    graph = helper.make_graph(nodes, "digits_cnn", [helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, ["batch", 1, 8, 8])],
                              [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, ["batch", 10])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tinyconv examples/digits/train.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def main() -> None:
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # N 1 8 8 in [0, 1]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    net = train(x_train.astype(np.float64), y_train)
    acc = (net.forward(x_test.astype(np.float64))[0].argmax(1) == y_test).mean()
    print(f"float test accuracy (NumPy): {100 * acc:.2f} % on {len(y_test)} held-out digits")
    export(net, x_train[:256].astype(np.float64), HERE / "digits_cnn.onnx")
    np.save(HERE / "calib.npy", x_train[:128])
    np.save(HERE / "test_x.npy", x_test)
    np.save(HERE / "test_y.npy", y_test)
    print(f"wrote {HERE / 'digits_cnn.onnx'}, calib.npy (128 training images), test_x.npy / test_y.npy")


if __name__ == "__main__":
    main()
