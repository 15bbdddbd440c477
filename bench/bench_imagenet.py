"""The densenet161 STCM loaded from torchvision's DenseNet-161 weights computes what torchvision computes.

Builds torchvision's `densenet161` with random weights and random BatchNormalization statistics (no download),
saves its state dict as a `.pth` and as a `.safetensors` file (the two layouts in which the ImageNet weights are
published: torchvision's densenet161-8d451a50.pth and timm's densenet161.tv_in1k model.safetensors), loads each
into the STCM through `--imagenet-weights`' loader, and compares the pooled features in inference mode on the same
inputs: torchvision's `relu(features(x))` averaged over the map against the STCM's `stcm_pool`. torch and
torchvision are a benchmark-only dependency (bench/requirements-torch.txt), never a runtime or CI one.

    pip install -r bench/requirements-torch.txt
    python bench/bench_imagenet.py [--size 224] [--batch 2]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def torchvision_features(size: int, batch: int, seed: int):
    """A random-weight torchvision densenet161 in eval mode, its state dict, inputs (NCHW) and pooled features."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    net = torchvision.models.densenet161(weights=None).eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # statistics and affine parameters away from 0 / 1
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        x = torch.randn(batch, 3, size, size)
        pooled = torch.nn.functional.adaptive_avg_pool2d(torch.relu(net.features(x)), 1).flatten(1)
    return net.state_dict(), x.numpy(), pooled.numpy()


def stcm_features(weights: pathlib.Path, images_nchw: np.ndarray) -> tuple[np.ndarray, str]:
    import keras

    from mans.network.model import build_model, load_backbone_weights

    size = images_nchw.shape[-1]
    model = build_model(10, "densenet161", size=size, use_tarm=False)
    line = load_backbone_weights(model, weights)
    pooled = keras.Model(model.input, model.get_layer("stcm_pool").output)
    return np.asarray(pooled.predict(np.transpose(images_nchw, (0, 2, 3, 1)), verbose=0)), line


def compare(folder: pathlib.Path) -> None:
    """The Keras side, in its own process (TensorFlow and torch in one process can crash each other)."""
    import keras

    x, expected = np.load(folder / "inputs.npy"), np.load(folder / "pooled.npy")
    print(f"keras {keras.__version__} ({keras.backend.backend()})")
    for path in (folder / "densenet161.pth", folder / "model.safetensors"):
        got, line = stcm_features(path, x)
        difference, largest = np.abs(got - expected), np.abs(expected).max()
        print(line.replace(f"{folder}/", ""))
        print(f"  {path.suffix}: pooled features {got.shape}, |torchvision| up to {largest:.3f}; "
              f"max abs difference {difference.max():.2e}, max relative {difference.max() / largest:.2e} "
              "(to the largest feature)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare:
        compare(pathlib.Path(args.compare))
        return
    import torch
    import torchvision
    from safetensors.torch import save_file

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}, "
          f"torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {np.__version__}")
    state, x, expected = torchvision_features(args.size, args.batch, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        torch.save(state, folder / "densenet161.pth")
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
        np.save(folder / "inputs.npy", x)
        np.save(folder / "pooled.npy", expected)
        subprocess.run([sys.executable, __file__, "--compare", tmp], check=True)


if __name__ == "__main__":
    main()
