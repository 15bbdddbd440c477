"""Evaluate a MANs checkpoint, predict actions of raw .skeleton files, or fuse saved score files.

Examples:
  python evaluate.py runs/ntu60-xsub/best.keras --data data/ntu60.h5 --benchmark xsub
      prints top-1, top-5 and mean per-class accuracy on the test split and writes, beside the checkpoint
      (or into --out): metrics.json, per_class_accuracy.csv, confusion_matrix.csv/.png, scores.npy,
      scores_names.txt, misclassified.csv
  python evaluate.py runs/ntu60-xsub/best.keras --skeleton S001C001P001R001A001.skeleton
      preprocesses the files as the run's training data was and prints the top-5 actions
  python evaluate.py --ensemble a/scores.npy b/scores.npy --weights 1 0.5 --data data/ntu60.h5 --benchmark xsub
      fuses score files (same samples, same order) and prints the fused accuracy
  python evaluate.py runs/ut-seeds --data data/utkinect.h5 --benchmark xsub
      a seed ensemble (train_MANs.py --seeds 1 2 3 --out runs/ut-seeds): evaluates each seed-<seed>/best.keras,
      prints each seed's top-1, their mean and the top-1 of their fused (mean) scores; the fusion's reports go
      into runs/ut-seeds, a summary into runs/ut-seeds/xsub_seeds.json
  python evaluate.py runs/ntu60-xsub/best.keras --explain S001C001P001R001A001.skeleton --out pictures [--gif]
      one picture per recording: the skeleton at a few frames, the TARM attention of every frame, the
      image the STCM sees and the top-5 actions (mans/evaluation/explain.py)
  python -m mans.stream --print-frames S001C001P001R001A001.skeleton | \
      python evaluate.py runs/ntu60-xsub/best.keras --stream --window 50 --stride 5 [--json]
      classifies a stream of frames, one a line (format: mans/evaluation/stream.py), one printed line per window
"""

import argparse
import pathlib
import sys

from mans.cli import backend_logs_silenced


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help=".keras checkpoint from train_MANs.py, or the run folder (its "
                   "best.keras); with --benchmark loso: the run folder holding the folds; a folder of seed-<seed> "
                   "runs (train_MANs.py --seeds): the seed ensemble; a folder of joint/bone/motion runs "
                   "(train_MANs.py --modalities): each and their fusion")
    p.add_argument("--data", help="HDF5 file from process_data.py")
    p.add_argument("--benchmark", default="xsub", help="a split of the data's dataset: xsub or xview (NTU-60), xsub "
                   "or xset (NTU-120), xsub, loso or loso-K (UT-Kinect, MSR Action3D, UTD-MHAD), or a split your "
                   "description names; default xsub")
    p.add_argument("--fold-checkpoint", default="best.keras",
                   help="with --benchmark loso or a seed ensemble: the checkpoint evaluated in each fold's or seed's "
                   "folder (default best.keras)")
    p.add_argument("--out", help="folder for the reports (default: the checkpoint's folder)")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    p.add_argument(
        "--in-memory",
        choices=["auto", "yes", "no"],
        default="auto",
        help="load the test split into memory first (auto: when it takes < 25%% of the RAM)",
    )
    p.add_argument(
        "--recompute-bn-stats",
        action="store_true",
        help="replace the BatchNormalization moving statistics by those of the run's training "
        "samples before evaluating (saves <checkpoint>_bnstats.keras)",
    )
    p.add_argument("--bn-samples", type=int, default=4096, help="training samples used for that (default 4096)")
    p.add_argument("--tta", choices=["none", "mirror"],
                   help="test-time augmentation: mirror averages the scores of each sample and of its left-right "
                   "mirror image (default: mirror where the run trained on mirror images, as UT-Kinect's and MSR "
                   "Action3D's defaults do; none otherwise)")
    p.add_argument("--skeleton", nargs="+", metavar="FILE", help="raw recordings to classify, in the format of the "
                   "checkpoint's data (.skeleton, joints_sSS_eEE.txt, aAA_sSS_eEE_skeleton3D.txt, or the .npy "
                   "sequences of your own described dataset)")
    p.add_argument("--top", type=int, help="actions printed per --skeleton file (default 5) or --stream window "
                   "(default 3)")
    p.add_argument("--explain", nargs="+", metavar="FILE", help="raw recordings to draw a picture of (into --out, "
                   "default: an explain/ folder beside the checkpoint)")
    p.add_argument("--gif", action="store_true", help="with --explain: also an animated GIF per recording")
    p.add_argument("--explain-class", metavar="NAME_OR_NUMBER", help="with --explain: the class whose importance "
                   "is measured (default: each recording's predicted class)")
    p.add_argument("--importance-window", type=int, metavar="ROWS", help="with --explain: the time steps hidden "
                   "together by the occlusion (default: a tenth of the recorded rows)")
    p.add_argument("--overwrite", action="store_true", help="with --explain: replace existing pictures")
    p.add_argument("--stream", action="store_true", help="classify frames read from standard input, one frame "
                   "a line (the joints' x y z in the dataset's order, body after body; see mans/evaluation/stream.py)")
    p.add_argument("--window", type=int, help="with --stream: frames per window (default: the model's S)")
    p.add_argument("--stride", type=int, default=1, help="with --stream: frames between windows (default 1)")
    p.add_argument("--json", action="store_true", help="with --stream: JSON lines instead of text")
    p.add_argument("--ensemble", nargs="+", metavar="SCORES", help="score files (.npy) to fuse")
    p.add_argument("--weights", nargs="+", type=float, help="one weight per --ensemble file (default 1 each)")
    return p


def _print_metrics(metrics: dict) -> None:
    print(
        f"top-1 {metrics['top1']:.2%}  top-5 {metrics['top5']:.2%}  mean per-class {metrics['mean_class_accuracy']:.2%}"
        f"  ({metrics['num_samples']} {metrics['benchmark']} test samples"
        f"{', mirror test-time augmentation' if metrics.get('tta') == 'mirror' else ''})"
    )


def run(args: argparse.Namespace, evaluation) -> None:
    """Dispatch to the ensemble, single-file or test-split evaluation (`evaluation`: mans.evaluation.score)."""
    from mans.evaluation import fusion
    from mans.training import runfolder

    UsageError = evaluation.UsageError

    if args.ensemble:
        if args.checkpoint or args.skeleton:
            raise UsageError("--ensemble takes score files only, no checkpoint or --skeleton")
        if not args.data:
            raise UsageError("--ensemble needs --data (the labels) and --benchmark")
        metrics = fusion.ensemble(args.ensemble, args.data, args.benchmark, args.weights, args.out)
        for member in metrics["members"]:
            print(f"{member['file']}: weight {member['weight']:g}, top-1 {member['top1']:.2%}")
        print("fused: ", end="")
        _print_metrics(metrics)
        return
    if not args.checkpoint:
        raise UsageError("expected a checkpoint (or --ensemble score files)")
    chosen = [flag for flag, given in (("--skeleton", args.skeleton), ("--explain", args.explain),
                                       ("--stream", args.stream)) if given]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} do different things: give one of them")
    args.checkpoint = run_checkpoint(args.checkpoint, args.fold_checkpoint, chosen[0] if chosen else None)
    if args.explain:
        explain(args)
        return
    if args.stream:
        from mans.evaluation import stream

        stream.stream(args.checkpoint, args.data, window=args.window, stride=args.stride,
                      top=args.top or stream.STREAM_TOP, json_lines=args.json)
        return
    if args.skeleton:
        for file, top in evaluation.predict_files(args.checkpoint, args.skeleton, args.data, args.top or 5):
            print(file)
            for rank, (name, probability) in enumerate(top, 1):
                print(f"  {rank}. {name}  {probability:.1%}")
        return
    if not args.data:
        raise UsageError("expected --data (the HDF5 file to evaluate on)")
    options = {"batch_size": args.batch_size, "in_memory": args.in_memory,
               "recompute_bn_stats": args.recompute_bn_stats, "bn_samples": args.bn_samples, "tta": args.tta}
    if runfolder.modality_folders(args.checkpoint):
        _evaluate_modalities(args, fusion, options)
        return
    if runfolder.seed_folders(args.checkpoint):
        _evaluate_seeds(args, fusion, options)
        return
    if args.benchmark == "loso":
        summary = evaluation.evaluate_folds(args.checkpoint, args.data, args.benchmark, args.fold_checkpoint, **options)
        for fold, metrics in summary["per_fold"].items():
            print(f"{fold}: top-1 {metrics['top1']:.2%} ({metrics['num_samples']} samples)")
        print(f"{args.benchmark} mean over {summary['folds']} folds: top-1 {summary['top1']:.2%} "
              f"+- {summary['top1_std']:.2%}, top-5 {summary['top5']:.2%}, mean per-class "
              f"{summary['mean_class_accuracy']:.2%}; {args.checkpoint}/{args.benchmark}_metrics.json")
        return
    metrics = evaluation.evaluate(args.checkpoint, args.data, args.benchmark, args.out, **options)
    _print_metrics(metrics)
    print(f"reports in {args.out or pathlib.Path(args.checkpoint).parent}")


def run_checkpoint(path: str, name: str, flag: str | None) -> str:
    """A single run's folder stands for its `name` checkpoint; a folder of folds, seeds or modalities stays
    itself (evaluated and fused as such; --skeleton fuses a run of several modalities, while `flag` --explain
    and --stream take one model)."""
    from mans.training import runfolder
    from mans.training.data import UsageError

    folder = pathlib.Path(path)
    if not folder.is_dir():
        return path
    if (folder / name).is_file():
        return str(folder / name)
    members = runfolder.modality_folders(folder)
    if flag in ("--explain", "--stream") and members:
        raise UsageError(f"{folder} holds one run per modality ({', '.join(m for m, _ in members)}): give {flag} "
                         f"one of their checkpoints, e.g. {members[0][1] / name}")
    return path


def _evaluate_seeds(args: argparse.Namespace, fusion, options: dict) -> None:
    """A seed ensemble's folder: each seed's top-1, their mean, and the top-1 of the fused scores."""
    summary = fusion.evaluate_seeds(args.checkpoint, args.data, args.benchmark, args.fold_checkpoint, **options)
    for seed, top1 in zip(summary["seeds"], summary["member_top1"], strict=True):
        print(f"seed {seed}: top-1 {top1:.2%}")
    folds = f", means over {summary['folds']} folds" if summary["folds"] > 1 else ""
    seeds_mean = sum(summary["member_top1"]) / len(summary["seeds"])
    print(f"{args.benchmark}: mean of the {len(summary['seeds'])} seeds' top-1 {seeds_mean:.2%}; "
          f"fused scores: top-1 {summary['top1']:.2%}, top-5 {summary['top5']:.2%}, mean per-class "
          f"{summary['mean_class_accuracy']:.2%}{folds}; {args.checkpoint}/{args.benchmark}_seeds.json")


def _evaluate_modalities(args: argparse.Namespace, fusion, options: dict) -> None:
    """A multi-modality run's folder: each modality's top-1 (the joint stream is the paper's) and their fusion."""
    summary = fusion.evaluate_modalities(args.checkpoint, args.data, args.benchmark, args.fold_checkpoint,
                                         weights=args.weights, **options)
    for name, top1 in zip(summary["modalities"], summary["member_top1"], strict=True):
        print(f"{name}: top-1 {top1:.2%}")
    folds = f", means over {summary['folds']} folds" if summary["folds"] > 1 else ""
    print(f"{args.benchmark}: fused {' + '.join(summary['modalities'])}: top-1 {summary['top1']:.2%}, top-5 "
          f"{summary['top5']:.2%}, mean per-class {summary['mean_class_accuracy']:.2%}{folds}; "
          f"{args.checkpoint}/{args.benchmark}_modalities.json")


def explain(args: argparse.Namespace) -> None:
    """--explain: one picture per recording, a line per picture, a summary line."""
    import time

    from tqdm import tqdm

    from mans.evaluation import explain as explain_lib

    out = pathlib.Path(args.out) if args.out else pathlib.Path(args.checkpoint).parent / "explain"
    start, results = time.perf_counter(), []
    for result in explain_lib.explain_files(args.checkpoint, args.explain, out, args.data, gif=args.gif,
                                            overwrite=args.overwrite, target=args.explain_class,
                                            window=args.importance_window):
        _, name, probability = result.explanation.top[0]
        tqdm.write(f"{result.paths[0]}: top-1 {name} {probability:.1%}")
        results.append(result)
    if results and results[0].explanation.attention is None:
        print(f"note: {args.checkpoint} has no TARM (trained with --no-tarm): there is no attention to show")
    print(explain_lib.explain_summary(results, time.perf_counter() - start, out))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with backend_logs_silenced():
        from mans.evaluation import score as evaluation
    try:
        run(args, evaluation)
    except evaluation.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
