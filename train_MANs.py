"""Train MANs on an HDF5 file from process_data.py; running the same command again resumes an interrupted run.

Example: python train_MANs.py --data data/ntu60.h5 --benchmark xsub --out runs/ntu60-xsub
Defaults are the authors' (SGD 0.01, momentum 0.9, Nesterov, batch 128, 50 epochs, ReduceLROnPlateau 0.2 /
5 / cooldown 3 / min 1e-4, best epoch by validation accuracy); a dataset may carry its own, and a flag
always wins. The run folder gets config.json, best.keras, last.keras, log.csv and tensorboard/.
"""

import argparse
import sys

from mans.cli import backend_logs_silenced


def parser() -> argparse.ArgumentParser:
    """The command line; every default is None so that the run can tell a given flag from a default."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="HDF5 file from process_data.py")
    p.add_argument("--benchmark", help="a split of the data's dataset: xsub or xview (NTU-60), xsub or xset (NTU-120), "
                   "xsub, loso (every fold) or loso-K (UT-Kinect, MSR Action3D), or a split your description names; "
                   "default xsub")
    p.add_argument("--out", required=True, help="run folder (new, or the folder of the run to resume)")
    p.add_argument(
        "--variant",
        choices=["resnet", "densenet161"],
        help="STCM: resnet (50 x 50, default) or densenet161 (224 x 224)",
    )
    p.add_argument("--epochs", type=int, help="default: the dataset's (100 for UT-Kinect, MSR Action3D and UTD-MHAD, "
                   "the small-data preset), else the paper's 50")
    p.add_argument("--batch-size", type=int, help="default: the dataset's (16 for the small-data preset), else the "
                   "paper's 128")
    p.add_argument("--lr", type=float, help="initial SGD learning rate, default 0.01")
    p.add_argument("--momentum", type=float, help="default 0.9")
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, help="Nesterov momentum, default on")
    p.add_argument("--l2", type=float, help="L2 factor on GRU kernels and convolutions, default 1e-4")
    p.add_argument("--seed", type=int, help="seeds weights, sample order, dropout and the hold-out; default 1234")
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="a seed ensemble: one run per seed in OUT/seed-SEED (evaluate.py OUT fuses their scores)")
    p.add_argument("--modalities", nargs="+", choices=["joint", "bone", "motion"], metavar="MODALITY",
                   help="one MANs per modality (joint, bone, motion), each on its converted file (--data's own, "
                   "or DATA-<modality>.h5 beside it from process_data.py --modality) in OUT/<modality>; "
                   "evaluate.py OUT fuses their scores; default: the modalities converted together with DATA")
    p.add_argument(
        "--val",
        choices=["holdout", "test", "none"],
        help="validation data: holdout (default: a part "
        "of the training performers), test (the authors' protocol: best epoch chosen on the test "
        "split), none (best.keras is the last epoch)",
    )
    p.add_argument("--val-fraction", type=float, help="share of training performers held out, default 0.1")
    p.add_argument("--reduce-lr-factor", type=float, help="ReduceLROnPlateau factor, default 0.2")
    p.add_argument("--reduce-lr-patience", type=int, help="epochs without val-loss improvement, default 5")
    p.add_argument("--reduce-lr-cooldown", type=int, help="default 3")
    p.add_argument("--min-lr", type=float, help="default 1e-4")
    p.add_argument("--schedule", choices=["plateau", "cosine"],
                   help="learning rate: plateau (the demo's ReduceLROnPlateau, default) or cosine (decay to "
                   "--min-lr over the run)")
    p.add_argument("--warmup-epochs", type=int, help="cosine only: linear warm-up epochs from 0, default 0")
    p.add_argument("--bn-recompute", action=argparse.BooleanOptionalAction,
                   help="at the end, set the BatchNormalization statistics of best.keras and last.keras from "
                   "the training samples (default off for NTU)")
    p.add_argument("--label-smoothing", type=float, help="label smoothing of the training loss in [0, 1), default 0")
    p.add_argument("--mixup", type=float, help="mixup of training samples: lam ~ Beta(a, a) per sample, a > 0; "
                   "default 0 (off)")
    p.add_argument("--ema", type=float, help="keep an exponential moving average of the weights with this momentum "
                   "in [0, 1) and save it as last.keras at the end; default 0 (off)")
    p.add_argument("--gru-units", type=int, help="TARM width; default 64 (resnet) or 128 (densenet161)")
    p.add_argument("--dropout", type=float, help="GRU input dropout; default 0.5 (resnet) or 0 (densenet161)")
    p.add_argument("--recurrent-dropout", type=float, help="GRU recurrent dropout; default as --dropout")
    p.add_argument(
        "--reset-after",
        action="store_true",
        default=None,
        help="Keras 3 / cuDNN GRU bias convention (default: the demo's reset_after=False)",
    )
    p.add_argument(
        "--no-tarm",
        dest="use_tarm",
        action="store_false",
        default=None,
        help="ablation: no TARM, the STCM sees the raw skeleton image",
    )
    p.add_argument(
        "--tarm-identity-start",
        action=argparse.BooleanOptionalAction,
        help="start each TARM as the identity (its output Dense at zero) instead of the demo's random start; "
        "the same network (default off)",
    )
    p.add_argument("--frozen-attention", action="store_true", default=None,
                   help="the demo's frozen attention: each TARM's two attention Dense layers keep their starting "
                   "weights (the authors' Lambda hid them from training); default: trained")
    p.add_argument(
        "--no-stcm-residual",
        dest="stcm_residual",
        action="store_false",
        default=None,
        help="ablation: resnet STCM without shortcuts",
    )
    augment = p.add_argument_group(
        "augmentation (training only, off at inference; default off for NTU as in the demo, on for UT-Kinect)"
    )
    augment.add_argument("--augment", action=argparse.BooleanOptionalAction, help="random transforms of the input")
    augment.add_argument("--rotation", type=float, help="max degrees about the body's vertical axis, default 30")
    augment.add_argument("--scale", type=float, help="max relative scale change, default 0.1")
    augment.add_argument("--jitter", type=float, help="per-joint Gaussian noise in metres, default 0.005")
    augment.add_argument("--time-warp", type=float, help="smooth frame-axis warp in [0, 1], default 0.3")
    augment.add_argument("--mirror", type=float, help="probability of a left-right mirror image, default 0")
    augment.add_argument("--crop", type=float, help="random temporal crop: the largest share of the recorded span "
                         "cut away (the rest is stretched back over it), default 0")
    p.add_argument("--init-from", metavar="CHECKPOINT", help="start from the weights of a .keras checkpoint (a run "
                   "on another dataset, say): every layer of the same name and shapes; a classifier of another "
                   "class count starts afresh; none: not the dataset's default checkpoint")
    p.add_argument("--imagenet-weights", help="HDF5 of ImageNet weights for the densenet161 STCM (by layer name)")
    p.add_argument(
        "--mixed-precision",
        nargs="?",
        const="auto",
        choices=["auto", "bfloat16", "float16"],
        help="mixed precision; alone: float16 on a GPU, bfloat16 elsewhere",
    )
    p.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        help="XLA compilation (default: Keras' choice, on for a GPU)",
    )
    p.add_argument(
        "--in-memory",
        choices=["auto", "yes", "no"],
        help="load the split into memory (auto, default: when it takes < 25%% of the RAM)",
    )
    p.add_argument("--workers", type=int, help="threads (or processes) reading batches, default 1")
    p.add_argument(
        "--use-multiprocessing", action="store_true", default=None, help="read batches in processes instead of threads"
    )
    p.add_argument(
        "--distribute",
        action="store_true",
        default=None,
        help="data-parallel over all local GPUs (TF MirroredStrategy / JAX DataParallel)",
    )
    p.add_argument("--steps-per-epoch", type=int, help="cap on the batches per epoch (quick tries)")
    p.add_argument("--max-train-samples", type=int, help="train on a random subset of this size (quick tries)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="start over in a run folder that holds another (or a finished) run",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with backend_logs_silenced():
        from mans.training import fit as training

    try:
        training.train(vars(args), argv=sys.argv if argv is None else ["train_MANs.py", *argv])
    except training.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except training.TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: run the same command to resume from the last finished epoch in {args.out}", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
