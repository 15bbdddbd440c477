"""Recognise actions live from a stream of frames (`evaluate.py CKPT --stream`), and turn a recording into
such a stream (`python -m mans.stream --print-frames FILE`).

The frame line format, one frame a line:
    body 0's joints in the dataset's joint order, x y z of each (joint 0's x y z, then joint 1's, ...), then
    body 1's, and so on: 3 x J numbers a body (NTU RGB+D: 75, UT-Kinect: 60), one body or more;
    numbers separated by spaces, tabs or commas, in the dataset's camera space (metres, as the recordings);
    an empty line is a frame in which no body is tracked; a line starting with "#" is a comment, not a frame.
A malformed line (a count that is not a multiple of 3 x J, a word that is not a number, NaN or infinity) is
reported with its line number and skipped.

The stream keeps the last N frames (`window`); every `stride` frames, once N frames have arrived, the window
becomes one image exactly as a training recording did (`mans.preprocessing.preprocess`, with the mode and size of the
checkpoint's run record) and is classified. Without Kinect bodyIDs, body k of each line is one person.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

import numpy as np

from mans import formats
from mans.preprocessing import preprocess

STREAM_TOP = 3  # actions printed per window
SHOWN_MALFORMED = 10  # line numbers listed in the summary


def parse_frame(line: str, num_joints: int) -> np.ndarray | None:
    """One frame line -> (bodies, J, 3) float32 (0 bodies for an empty line); None for a comment line.

    Raises: ValueError saying what is wrong (without the line number).
    """
    text = line.strip()
    if text.startswith("#"):
        return None
    tokens = text.replace(",", " ").split()
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(token for token in tokens if not _is_number(token))
        raise ValueError(f"expected numbers, found {bad[:40]!r}") from None
    per_body = 3 * num_joints
    if len(tokens) % per_body:
        raise ValueError(
            f"expected {per_body} numbers a body ({num_joints} joints x y z), one body or more, found {len(tokens)}"
        )
    if not np.isfinite(values).all():
        raise ValueError("expected finite coordinates, found NaN or infinity")
    return values.astype(np.float32).reshape(-1, num_joints, 3)  # (bodies, J, 3)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def format_frame(bodies: np.ndarray) -> str:
    """(bodies, J, 3) coordinates -> one frame line ("%.9g": a float32 reads back bit for bit)."""
    return " ".join(f"{v:.9g}" for v in np.asarray(bodies, np.float32).reshape(-1).tolist())


@dataclasses.dataclass(frozen=True)
class Window:
    """One classified (or unclassifiable) window of frames first..last (0-based frame indices)."""

    first: int
    last: int
    top: list[tuple[int, str, float]] | None  # (class index, name, probability), best first
    reason: str | None  # why it was not classified (top is None)
    latency_ms: float  # from the arrival of its last frame's line to its result

    def text(self) -> str:
        if self.top is None:
            return f"frame {self.last}  not classified: {self.reason}"
        actions = "  |  ".join(f"{name} {p:.1%}" for _, name, p in self.top)
        return f"frame {self.last}  {actions}  ({self.latency_ms:.1f} ms)"

    def record(self) -> dict:
        top = None if self.top is None else [{"class": i, "action": n, "probability": p} for i, n, p in self.top]
        record = {"type": "window", "frame": self.last, "first_frame": self.first, "top": top,
                  "latency_ms": round(self.latency_ms, 3)}
        return record if self.reason is None else {**record, "reason": self.reason}


@dataclasses.dataclass
class StreamSummary:
    """What a stream held and how fast it was classified; `line()` is the one line that ends it."""

    window: int
    stride: int
    lines: int = 0
    frames: int = 0
    windows: int = 0
    unclassified: int = 0
    malformed: list[int] = dataclasses.field(default_factory=list)
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    interrupted: bool = False

    def latency(self) -> dict[str, float] | None:
        if not self.latencies_ms:
            return None
        values = np.asarray(self.latencies_ms)
        return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95)),
                "max": float(values.max()), "mean": float(values.mean())}

    def line(self) -> str:
        ended = "interrupted" if self.interrupted else "end of stream"
        if not self.frames:
            found = f"{self.lines} lines" if self.lines else "no input"
            return f"{ended}: no frames ({found}{self._malformed_text()}); no window of {self.window} frames classified"
        head = f"{ended}: {self.frames} frames from {self.lines} lines{self._malformed_text()}"
        if not self.windows:
            return f"{head}, fewer than the window of {self.window} frames: no window classified"
        classified = self.windows - self.unclassified
        parts = [f"{head}, {classified} windows of {self.window} frames at stride {self.stride} classified"]
        if self.unclassified:
            parts.append(f"{self.unclassified} not classifiable")
        latency = self.latency()
        if latency:
            parts.append(f"latency median {latency['median']:.1f} ms, 95th percentile {latency['p95']:.1f} ms, "
                         f"max {latency['max']:.1f} ms")
        return ", ".join(parts)

    def _malformed_text(self) -> str:
        if not self.malformed:
            return ""
        shown = ", ".join(map(str, self.malformed[:SHOWN_MALFORMED]))
        more = f" and {len(self.malformed) - SHOWN_MALFORMED} more" if len(self.malformed) > SHOWN_MALFORMED else ""
        return f", {len(self.malformed)} malformed lines skipped (line {shown}{more})"

    def record(self) -> dict:
        return {"type": "summary", "lines": self.lines, "frames": self.frames, "window": self.window,
                "stride": self.stride, "windows": self.windows - self.unclassified,
                "unclassified_windows": self.unclassified, "malformed_lines": self.malformed,
                "latency_ms": self.latency(), "interrupted": self.interrupted, "text": self.line()}


class SlidingWindow:
    """The last `window` frames; every `stride` frames once full, the window classified by `predictor`."""

    def __init__(self, predictor, window: int, stride: int = 1, top: int = STREAM_TOP):
        if window < 1 or stride < 1:
            raise ValueError(f"expected a window and a stride of at least 1 frame, found {window} and {stride}")
        self.predictor = predictor
        self.window = window
        self.stride = stride
        self.top = top
        self.frames: collections.deque[np.ndarray] = collections.deque(maxlen=window)
        self.count = 0  # frames received

    def push(self, frame: np.ndarray, arrived: float | None = None) -> Window | None:
        """Add one (bodies, J, 3) frame; the window's result when it is due (`arrived`: perf_counter time)."""
        arrived = time.perf_counter() if arrived is None else arrived
        self.frames.append(frame)
        self.count += 1
        if self.count < self.window or (self.count - self.window) % self.stride:
            return None
        return self.classify(arrived)

    def image(self) -> np.ndarray:
        """The (S, S, 3) image of the frames held, made as a training recording's; SampleSkipped if none can be."""
        predictor = self.predictor
        skel = formats.skeleton_from_frames(list(self.frames), predictor.layout.num_joints)
        return preprocess.image_and_drops(skel, predictor.preprocessing, predictor.size, predictor.layout)[0]

    def classify(self, arrived: float) -> Window:
        first, last = self.count - len(self.frames), self.count - 1
        try:
            image = self.image()
        except preprocess.SampleSkipped as error:
            return Window(first, last, None, f"{error} (frames {first}-{last})", _ms_since(arrived))
        scores = self.predictor.scores(image[None])[0]
        return Window(first, last, self.predictor.top(scores, self.top), None, _ms_since(arrived))


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


def classify_lines(lines: Iterable[str], windows: SlidingWindow, summary: StreamSummary) -> Iterator[Window | dict]:
    """Feed frame lines to the window; yields each Window due and, for a malformed line, a
    {"type": "malformed", "line": n, "message": ...} record. Fills `summary` as it goes."""
    num_joints = windows.predictor.layout.num_joints
    for number, line in enumerate(lines, start=1):
        arrived = time.perf_counter()
        summary.lines = number
        try:
            frame = parse_frame(line, num_joints)
        except ValueError as error:
            summary.malformed.append(number)
            yield {"type": "malformed", "line": number, "message": str(error)}
            continue
        if frame is None:
            continue
        summary.frames += 1
        result = windows.push(frame, arrived)
        if result is not None:
            summary.windows += 1
            if result.top is None:
                summary.unclassified += 1
            else:
                summary.latencies_ms.append(result.latency_ms)
            yield result


def run_stream(
    lines: Iterable[str],
    predictor,
    window: int,
    stride: int = 1,
    *,
    top: int = STREAM_TOP,
    json_lines: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> StreamSummary:
    """Classify a stream of frame lines and print one line per window and a summary line at the end.

    Text: windows and the summary on `out`, malformed lines ("line N: ...; skipped") on `err`. JSON lines
    (`json_lines`): every record on `out`, each with a "type": "window", "malformed" or "summary".
    Ctrl-C ends the stream like the end of input, with the summary marked interrupted.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    windows = SlidingWindow(predictor, window, stride, top)
    summary = StreamSummary(window=window, stride=stride)

    def emit(text: str, stream: TextIO) -> None:
        print(text, file=stream, flush=True)  # flushed: another program reads it as it comes

    try:
        for event in classify_lines(lines, windows, summary):
            if isinstance(event, Window):
                emit(json.dumps(event.record()) if json_lines else event.text(), out)
            elif json_lines:
                emit(json.dumps(event), out)
            else:
                emit(f"line {event['line']}: {event['message']}; skipped", err)
    except KeyboardInterrupt:
        summary.interrupted = True
    emit(json.dumps(summary.record()) if json_lines else summary.line(), out)
    return summary


def stream(
    checkpoint,
    data_path=None,
    *,
    window: int | None = None,
    stride: int = 1,
    top: int = STREAM_TOP,
    json_lines: bool = False,
    lines: Iterable[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> StreamSummary:
    """`evaluate.py CKPT --stream`: classify frame lines (default: standard input) with a checkpoint.

    The predict function is compiled with XLA where the backend has it, and warmed up before the first
    line is read, so the first window's latency is like the others'. window: frames per window (default:
    the model's S, 50 for the demo network). See `run_stream` for the output.
    """
    from mans.evaluation.score import load_predictor
    from mans.training.data import UsageError

    predictor = load_predictor(checkpoint, data_path, jit_compile=True)
    window = predictor.size if window is None else window
    if window < 1 or stride < 1:
        raise UsageError(f"expected --window and --stride of at least 1 frame, found {window} and {stride}")
    predictor.scores(np.zeros((1, predictor.size, predictor.size, 3), np.float32))  # compile before the stream
    return run_stream(sys.stdin if lines is None else lines, predictor, window, stride, top=top,
                      json_lines=json_lines, out=out, err=err)


def print_frames(files: Iterable[str], fmt_name: str | None = None, fps: float | None = None,
                 out: TextIO | None = None) -> int:
    """Print every frame of the recordings of `files` as frame lines (all listed bodies); returns the count.

    fmt_name: a registered recording format (default: chosen by each file's name). fps: pause between
    frames to play the recording at that rate (a live sensor's pace).
    """
    out = sys.stdout if out is None else out
    count = 0
    for file in files:
        fmt = formats.format_named(fmt_name) if fmt_name else formats.format_for_file(file)
        for recording in fmt.recordings(file):
            for frame in formats.listed_frames(recording.skeleton):
                out.write(format_frame(frame) + "\n")
                count += 1
                if fps:
                    out.flush()
                    time.sleep(1.0 / fps)
    out.flush()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mans.stream",
        description="Print raw recordings as frame lines, one frame a line, for `evaluate.py CKPT --stream`. "
        "Example: python -m mans.stream --print-frames S001C001P001R001A023.skeleton | "
        "python evaluate.py runs/demo/best.keras --stream --window 40 --stride 5",
    )
    parser.add_argument("--print-frames", nargs="+", metavar="FILE", required=True,
                        help="recordings to print (NTU .skeleton, UT-Kinect joints_sSS_eEE.txt, ...)")
    names = [name for fmt in formats.file_formats() for name in (fmt.name, *fmt.aliases)]
    parser.add_argument("--format", choices=names,
                        help="the files' format (default: from each file's name)")
    parser.add_argument("--fps", type=float, help="play the frames at this rate (default: as fast as possible)")
    args = parser.parse_args(argv)
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        print(f"error: expected --fps > 0, found {args.fps}", file=sys.stderr)
        return 2
    try:
        print_frames(args.print_frames, args.format, args.fps)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's advice: no error at exit
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
