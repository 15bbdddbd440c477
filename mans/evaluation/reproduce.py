"""The paper's NTU RGB+D table in one command: preprocess, train, evaluate, and a table beside the paper's figures.

    python -m mans.reproduce --skeletons nturgb+d_skeletons --missing-list NTU_RGBD_samples_with_missing_skeletons.txt \
        --imagenet-weights densenet161_weights_tf.h5 --out runs/paper
    python -m mans.reproduce --tiny --out runs/paper-tiny          # the whole chain on synthetic recordings, CPU

The skeleton folder is converted once per image size (`OUT/data/<dataset>_<size>.h5`: 50 for the demo's network,
224 for DenseNet-161), each variant is trained on each benchmark with the paper's settings (`OUT/<variant>-
<benchmark>/`, the DenseNet-161 STCM started from `--imagenet-weights`), its best checkpoint is evaluated on the
benchmark's test split, and `OUT/results.md` and `OUT/results.json` list every run's top-1 beside the paper's,
with its training wall time and samples per second. Run the same command again after an interruption: finished
conversions and runs are kept, an interrupted run resumes from its last epoch.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from mans import cli

PAPER = {("densenet161", "xsub"): 82.67, ("densenet161", "xview"): 93.22}  # NTU RGB+D 60, top-1 %
SIZES = {"resnet": 50, "densenet161": 224}
TINY = {"samples": 80, "actions": 4,
        "train": {"epochs": 1, "batch_size": 8, "steps_per_epoch": 2, "gru_units": 4, "val": "none"}}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mans.reproduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--skeletons", help="the folder of NTU RGB+D .skeleton files")
    p.add_argument("--missing-list", help="NTU's list of samples with missing skeletons")
    p.add_argument("--out", required=True, help="the folder of the data, the runs and the table")
    p.add_argument("--variants", nargs="+", choices=list(SIZES),
                   help="networks to train: resnet (the demo's 50 x 50) and densenet161 (the paper's 224 x 224); "
                   "default both (with --tiny: resnet, as DenseNet-161's training step takes minutes to trace on a "
                   "CPU)")
    p.add_argument("--benchmarks", nargs="+", help="default: xsub xview (NTU-60) or xsub xset (NTU-120)")
    p.add_argument("--imagenet-weights", help="DenseNet-161 ImageNet weights for the densenet161 STCM (README, "
                   "'Reproducing the paper'); without them it starts from random weights, which the table says")
    p.add_argument("--mode", choices=["faithful", "denoised"], default="faithful")
    p.add_argument("--tiny", action="store_true", help="the whole chain on synthetic NTU recordings, tiny (a CPU "
                   "check of the plumbing; its figures mean nothing)")
    return p


def convert(args: argparse.Namespace, folder: pathlib.Path, size: int, out: pathlib.Path) -> pathlib.Path:
    """The folder converted at `size` into OUT/data (kept when already complete)."""
    from mans.preprocessing import storage

    dataset = "ntu60" if args.tiny else None
    name = out / "data" / f"{'tiny' if args.tiny else 'ntu'}_{args.mode}_{size}.h5"
    if name.exists():
        print(f"{name}: converted before, kept")
        return name
    name.parent.mkdir(parents=True, exist_ok=True)
    summary = storage.convert_folder(folder, name, dataset=dataset, mode=args.mode, size=size,
                                     missing_list=args.missing_list, progress=not args.tiny)
    print(summary.line())
    return name


def run_one(args: argparse.Namespace, data: pathlib.Path, variant: str, benchmark: str,
            out: pathlib.Path) -> dict:
    """Train (or resume) one variant on one benchmark, evaluate its best checkpoint; the table's row."""
    from mans.evaluation import score as evaluation
    from mans.training import fit as training

    run = out / f"{variant}-{benchmark}"
    flags: dict[str, object] = {"data": str(data), "benchmark": benchmark, "variant": variant, "out": str(run)}
    if variant == "densenet161" and args.imagenet_weights:
        flags["imagenet_weights"] = args.imagenet_weights
    if args.tiny:
        flags.update(TINY["train"])
    result = training.train_one(flags, argv=sys.argv)
    record = json.loads((run / "config.json").read_text())
    metrics = evaluation.evaluate(run / "best.keras", data, benchmark, out=run / "evaluation")
    per_epoch, steps = record["splits"]["fit"], record["config"].get("steps_per_epoch")
    if steps:
        per_epoch = min(per_epoch, steps * record["config"]["batch_size"])
    samples = per_epoch * result.epochs_done
    return {
        "variant": variant, "benchmark": benchmark, "size": int(record["data_attrs"]["size"]),
        "imagenet_weights": flags.get("imagenet_weights"), "top1": round(100 * metrics["top1"], 2),
        "top5": round(100 * metrics["top5"], 2), "paper_top1": PAPER.get((variant, benchmark)),
        "epochs": result.epochs_done, "train_wall_s": round(result.wall_time, 1),
        "train_samples_per_s": round(samples / result.wall_time, 1) if result.wall_time else None,
        "test_samples": metrics["num_samples"], "run": str(run),
    }


def table(rows: list[dict]) -> str:
    """The Markdown table of the rows, the paper's figure beside each."""
    lines = ["| network | benchmark | image | top-1 % | paper top-1 % | top-5 % | training | samples/s |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        start = "ImageNet start" if row["imagenet_weights"] else "random start"
        network = f"{row['variant']} ({start})" if row["variant"] == "densenet161" else row["variant"]
        paper = "-" if row["paper_top1"] is None else f"{row['paper_top1']:.2f}"
        lines.append(f"| {network} | {row['benchmark']} | {row['size']} x {row['size']} | {row['top1']:.2f} | {paper} "
                     f"| {row['top5']:.2f} | {row['epochs']} epochs, {_duration(row['train_wall_s'])} | "
                     f"{row['train_samples_per_s']} |")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def write_results(out: pathlib.Path, rows: list[dict], dataset: str) -> None:
    from mans.training.runfolder import write_json_atomic

    write_json_atomic(out / "results.json", {"dataset": dataset, "rows": rows})
    text = f"# MANs on {dataset}: this reproduction beside the paper (IJCAI 2018)\n\n{table(rows)}\n"
    tmp = out / ".results.md.tmp"
    tmp.write_text(text)
    tmp.replace(out / "results.md")


def reproduce(args: argparse.Namespace) -> list[dict]:
    from mans.preprocessing import datasets, synthetic
    from mans.training import data as data_lib

    out = pathlib.Path(args.out)
    started = time.perf_counter()
    if args.tiny:
        folder = out / "tiny-skeletons"
        if not any(folder.glob("*.skeleton")):
            synthetic.write_synthetic_dataset(folder, TINY["samples"], num_actions=TINY["actions"], frames=(30, 60))
    elif args.skeletons is None:
        raise ValueError("expected --skeletons (the NTU RGB+D .skeleton folder), or --tiny")
    else:
        folder = pathlib.Path(args.skeletons)
    args.variants = args.variants or (["resnet"] if args.tiny else list(SIZES))
    files = {size: convert(args, folder, size, out) for size in sorted({SIZES[v] for v in args.variants})}
    dataset = data_lib.open_data(next(iter(files.values()))).dataset
    benchmarks = args.benchmarks or [name for name in datasets.get_dataset(dataset).benchmarks][:2]
    rows = []
    for variant in args.variants:
        for benchmark in benchmarks:
            print(f"== {variant} on {benchmark}")
            rows.append(run_one(args, files[SIZES[variant]], variant, benchmark, out))
            write_results(out, rows, dataset)
    print(f"{len(rows)} runs in {time.perf_counter() - started:.0f} s; table in {out / 'results.md'}")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with cli.backend_logs_silenced():
        from mans.training.data import UsageError
    try:
        with cli.sigterm_as_exception():
            reproduce(args)
    except (UsageError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command to resume in {args.out}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
