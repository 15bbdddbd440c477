"""Training and inference speed of the MANs network (samples/s) on random skeleton images.

Builds mans.network.model.build_model for each variant, compiles it as the demo trains (SGD, Nesterov momentum,
categorical cross-entropy), runs --warmup steps (compilation included) and then times --steps calls of
train_on_batch and of predict_on_batch on one fixed batch. Prints the backend, Keras version and device
beside the figures. The densenet161 variant at S = 224 is slow on a CPU (seconds per sample) and its
training batch of 128 needs tens of GB: give it a small --steps and --batch-size there.
Example: python bench/bench_model.py --variant resnet --batch-size 128 --steps 10
         python bench/bench_model.py --variant densenet161 --batch-size 8 --steps 2 --warmup 1
"""

import argparse
import os
import pathlib
import platform
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=["resnet", "densenet161", "both"], default="both")
    parser.add_argument("--batch-size", type=int, default=128, help="samples per step (the demo's 128)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation)")
    parser.add_argument("--size", type=int, default=None, help="S; default 50 (resnet) / 224 (densenet161)")
    parser.add_argument("--num-classes", type=int, default=60)
    parser.add_argument(
        "--recurrent-dropout", type=float, default=None, help="GRU recurrent dropout; default the variant's"
    )
    parser.add_argument("--reset-after", action="store_true", help="Keras 3 / cuDNN GRU bias convention")
    parser.add_argument("--mixed-precision", action="store_true", help="keras mixed_bfloat16 policy")
    parser.add_argument("--jit-compile", choices=["auto", "true", "false"], default="auto")
    parser.add_argument(
        "--run-eagerly",
        action="store_true",
        help="run each step op by op, without tracing a graph (a check on the CPU: tracing DenseNet-161's "
        "training step takes minutes there, far longer than one eager step)",
    )
    parser.add_argument("--imagenet-weights", help="densenet161: start the STCM from this weights file "
                        "(train_MANs.py --imagenet-weights; the line it prints names what was loaded)")
    parser.add_argument("--write-imagenet-weights", metavar="FILE", help="write a densenet161 STCM's random weights "
                        "in torchvision's layout (.safetensors) to FILE and stop: a stand-in for the published file")
    parser.add_argument(
        "--backend",
        choices=["tensorflow", "jax", "torch"],
        default=None,
        help="KERAS_BACKEND; default: the environment's, else tensorflow",
    )
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1. Received: {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0. Received: {args.warmup}")
    return args


def device_description(backend: str) -> str:
    """The accelerator the backend computes on, else the CPU."""
    cpu = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} logical cores visible)"
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return cpu if device.platform == "cpu" else f"{device.platform.upper()} {device.device_kind}"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return (
            f"GPU {tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)}"
            if gpus
            else cpu
        )
    import torch

    return f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else cpu


def measure(step, steps: int, warmup: int, batch_size: int) -> float:
    """Samples per second of `step()` over `steps` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

    import keras
    import numpy as np

    from mans.network.model import VARIANT_DEFAULTS, build_model, load_backbone_weights

    backend = keras.backend.backend()
    policy = "mixed_bfloat16" if args.mixed_precision else "float32"
    keras.config.set_dtype_policy(policy)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    print(f"backend {backend}, Keras {keras.__version__}, numpy {np.__version__}, Python {platform.python_version()}")
    print(f"device: {device_description(backend)}")
    execution = "run eagerly" if args.run_eagerly else f"jit_compile {args.jit_compile}"
    print(f"policy {policy}, {execution}, batch {args.batch_size}, warm-up {args.warmup} + timed {args.steps} steps")
    if args.write_imagenet_weights:
        from safetensors.numpy import save_file

        from mans.network import imagenet

        stcm = build_model(args.num_classes, "densenet161", 32, use_tarm=False)
        save_file(imagenet.to_torchvision_state(stcm.layers), args.write_imagenet_weights)
        print(f"wrote a densenet161 STCM's random weights in torchvision's layout to {args.write_imagenet_weights}")
        return
    variants = ["resnet", "densenet161"] if args.variant == "both" else [args.variant]
    rng = np.random.default_rng(1234)
    for variant in variants:
        size = args.size or VARIANT_DEFAULTS[variant]["size"]
        model = build_model(
            args.num_classes, variant, size, recurrent_dropout=args.recurrent_dropout, reset_after=args.reset_after
        )
        if variant == "densenet161" and args.imagenet_weights:
            print(load_backbone_weights(model, args.imagenet_weights))
        gru = model.get_layer("tarm_x").memory.forward_layer
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
            loss="categorical_crossentropy",
            jit_compile=False if args.run_eagerly else jit,
            run_eagerly=args.run_eagerly,
        )
        x = rng.normal(size=(args.batch_size, size, size, 3)).astype("float32")
        y = keras.utils.to_categorical(rng.integers(args.num_classes, size=args.batch_size), args.num_classes)
        train = measure(lambda: model.train_on_batch(x, y), args.steps, args.warmup, args.batch_size)  # noqa: B023
        infer = measure(lambda: model.predict_on_batch(x), args.steps, args.warmup, args.batch_size)  # noqa: B023
        print(
            f"{variant:12s} S={size} params {model.count_params():,} GRU dropout {gru.dropout} "
            f"recurrent_dropout {gru.recurrent_dropout} reset_after {gru.reset_after}: "
            f"train {train:8.1f} samples/s, inference {infer:8.1f} samples/s"
        )
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
