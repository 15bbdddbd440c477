"""Convert a folder of skeleton recordings into one HDF5 file of S x S x 3 MANs images: NTU RGB+D .skeleton
files, UT-Kinect-Action3D, MSR Action3D, or your own data (a folder of .npy arrays and a labels table, described
by a JSON file: README "Your own data").

Example: python process_data.py --skeletons nturgbd_skeletons_s001_to_s017 --out data/ntu60.h5 \\
             --missing-list NTU_RGBD_samples_with_missing_skeletons.txt
Your own data: python process_data.py --dataset my_data/description.json --skeletons my_data --out data/my.h5
Synthetic data (no dataset needed): python process_data.py --synthetic data/synthetic --samples 600 \\
             --actions 10 --out data/synthetic.h5
UT-Kinect: python process_data.py --dataset utkinect --skeletons UTKinect --out data/utkinect.h5
             (a folder with joints/ and actionLabel.txt; --synthetic DIR --dataset utkinect writes one)
Prints one summary line (kept, skipped by reason, files/s) and writes the skipped names beside the
output (`<out stem>.skipped.csv`). Expect about 600 files/s with 2 workers on an otherwise idle
2-core machine, under 100 MiB of memory (bench/bench_preprocess.py: 612 and 637 files/s, whole process,
on 2000 synthetic files of 99 frames on average; 3.0 ms of CPU per file), so NTU-60 in about 1.5
minutes; parsing the text is ~80 % of the work.
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import sys

from mans import cli
from mans.formats.ntu import SkeletonFormatError
from mans.preprocessing import datasets, storage


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--skeletons", help="folder of the recordings: SsssCcccPpppRrrrAaaa.skeleton files (NTU), "
                        "the folder holding joints/ and actionLabel.txt (UT-Kinect), aAA_sSS_eEE_skeleton3D.txt "
                        "files (MSR Action3D), or .npy arrays and the labels table (your own description)")
    source.add_argument("--synthetic", metavar="DIR", help="write synthetic .skeleton files into DIR "
                        "(then convert them if --out is given)")
    parser.add_argument("--out", help="HDF5 file to write (required with --skeletons)")
    parser.add_argument("--dataset", metavar="NAME_OR_JSON",
                        help="a built-in dataset (ntu60, ntu120, utkinect, msr-action3d, utd-mhad) or the path of a "
                        "description .json file (README 'Your own data'); default: ntu120 if any action number > 60, "
                        "else ntu60")
    parser.add_argument("--missing-list", help="file of sample names to skip (NTU's samples with missing skeletons)")
    parser.add_argument("--size", type=int, default=50, help="frames and joint columns S (224 for the large variant)")
    parser.add_argument("--mode", choices=["faithful", "denoised"], default="faithful",
                        help="faithful: the authors' demo, quirks included; denoised: CTR-GCN's NTU "
                        "denoising of the bodies (README), noise listed in <out stem>.denoised.csv")
    parser.add_argument("--frames", choices=["pad", "resample", "timed"],
                        help="time axis to S rows: pad (the demo's zero-padding / sampling), resample (the "
                        "recorded frames interpolated onto all S rows) or timed (the same at instants evenly spaced "
                        "in time, where the reader gives capture times: UT-Kinect); default: the dataset's (README)")
    parser.add_argument("--signs", choices=["demo", "rigid"],
                        help="sign fixes of the view normalisation: demo (the authors': each axis tested alone) or "
                        "rigid (the frame stays a rotation, no one-axis reflections); default: the dataset's (README)")
    parser.add_argument("--centre", choices=["first", "frame", "floor"],
                        help="origin of the view normalisation: first (the demo's: each body's hip centre in its "
                        "first frame, for the whole recording), frame (every frame's own hip centre) or floor "
                        "(every frame's hips in the horizontal plane, the first frame's height); default: the "
                        "dataset's (README)")
    parser.add_argument("--scale", choices=["none", "torso"],
                        help="unit of the coordinates: none (the recording's, metres for a Kinect; the demo's) or "
                        "torso (divided by the actor's torso length, hips to shoulder: the same image for a child "
                        "and an adult); default: the dataset's (README)")
    parser.add_argument("--modality", nargs="+", choices=["joint", "bone", "motion"],
                        help="what the image holds: joint (the positions, the paper's), bone (each joint minus its "
                        "parent along the dataset's bones) or motion (the difference of consecutive frames); "
                        "several: OUT holds the first and OUT-<modality>.h5 each other one, and train_MANs.py "
                        "trains them all; default: the dataset's (joint unless its description says)")
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")
    parser.add_argument("--limit", type=int, help="only the first N files, in name order")
    parser.add_argument("--strict", action="store_true", help="any skipped sample is an error")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output (with --synthetic: the .skeleton files in DIR too)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    synthetic = parser.add_argument_group("synthetic data (with --synthetic)")
    synthetic.add_argument("--samples", type=int, help="number of synthetic files (not for utkinect: always "
                           "10 subjects x 2 episodes x 10 actions)")
    synthetic.add_argument("--actions", type=int, help="use actions 1..K (default: all of the dataset)")
    synthetic.add_argument("--seed", type=int, default=0)
    return parser


def write_synthetic(args: argparse.Namespace) -> None:
    """--synthetic DIR: write synthetic recordings of the dataset asked for (NTU by default) into DIR."""
    folder = pathlib.Path(args.synthetic)
    if args.dataset == "utkinect":
        from mans.preprocessing.synthetic import write_synthetic_utkinect

        if (folder / "actionLabel.txt").exists() and not args.overwrite:
            raise FileExistsError(f"{folder} already holds a UT-Kinect folder: pass --overwrite to replace it")
        sequences = write_synthetic_utkinect(folder, seed=args.seed)
        print(f"{folder}: wrote {len(sequences)} synthetic UT-Kinect sequences and actionLabel.txt")
        return
    if args.samples is None:
        raise ValueError("--synthetic needs --samples N")
    from mans.preprocessing.synthetic import write_synthetic_dataset

    old = sorted(folder.glob("*.skeleton"))
    if old and not args.overwrite:
        raise FileExistsError(f"{folder} already holds {len(old)} .skeleton files: pass --overwrite to replace them")
    for path in old:
        path.unlink()
    paths = write_synthetic_dataset(folder, args.samples, dataset=args.dataset or "ntu60", num_actions=args.actions,
                                    seed=args.seed, workers=args.workers or 1)
    print(f"{folder}: wrote {len(paths)} synthetic .skeleton files")


def run(args: argparse.Namespace, command: str) -> None:
    if args.synthetic is not None:
        write_synthetic(args)
        if args.out is None:
            return
    elif args.out is None:
        raise ValueError("--skeletons needs --out FILE")
    source = args.synthetic if args.synthetic is not None else args.skeletons
    spec = None if args.dataset is None else datasets.load_dataset(args.dataset)
    if spec is not None and spec.description.reader != "ntu-skeleton":
        for option in ("missing_list", "limit"):
            if getattr(args, option) is not None:
                flag = "--" + option.replace("_", "-")
                raise ValueError(f"{flag} applies to NTU RGB+D only, not to --dataset {args.dataset}")
    modalities = list(dict.fromkeys(args.modality or (spec.description.modalities if spec else ["joint"])))
    for number, modality in enumerate(modalities):
        out = args.out if number == 0 else storage.modality_path(args.out, modality)
        summary = storage.convert_folder(source, out, dataset=spec, mode=args.mode, size=args.size,
                                         frames=args.frames, signs=args.signs, centre=args.centre, modality=modality,
                                         modalities=modalities, scale=args.scale,
                                         workers=args.workers,
                                         missing_list=args.missing_list, limit=args.limit, strict=args.strict,
                                         overwrite=args.overwrite, command=command, progress=not args.quiet)
        for note in summary.notes:
            print(note)
        print(summary.line())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = shlex.join(sys.argv if argv is None else ["process_data.py", *argv])
    try:
        with cli.sigterm_as_exception():
            run(args, command)
    except (ValueError, OSError, SkeletonFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no output written", file=sys.stderr)
        return 130
    except cli.Terminated:
        print("error: terminated (SIGTERM); no output written", file=sys.stderr)
        return cli.TERMINATED_EXIT_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main())
