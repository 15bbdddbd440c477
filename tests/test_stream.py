"""mans.evaluation.stream and evaluate.py --stream: the frame line format, windows preprocessed as the training data,
a classification that follows the stream from one action to the next, malformed lines, an empty stream."""

import io
import json
import pathlib
import sys

import keras
import numpy as np
import pytest
from test_data import load_script

from mans import formats as recordings
from mans.evaluation import score as evaluation
from mans.evaluation import stream
from mans.formats import ntu as skeleton_io
from mans.network.model import build_model
from mans.preprocessing import datasets, preprocess, synthetic

REPO = pathlib.Path(__file__).resolve().parents[1]
evaluate_script = load_script(REPO, "evaluate")
ACTIONS = (23, 27)  # hand waving, jump up: two synthetic motion programs (mans/preprocessing/synthetic.py)
WINDOW, STRIDE = 30, 10


def recording(action: int, performer: int, seed: int, frames: int = 60) -> skeleton_io.Skeleton:
    name = skeleton_io.SampleName(setup=1, camera=1 + performer % 3, performer=performer, replication=1,
                                  action=action)
    text = synthetic.render_sample(name, seed, frames=(frames, frames), noise=False)
    return skeleton_io.parse_skeleton_bytes(text.encode(), str(name))


def frame_lines(skel: skeleton_io.Skeleton) -> list[str]:
    return [stream.format_frame(frame) + "\n" for frame in recordings.listed_frames(skel)]


def crops(skel: skeleton_io.Skeleton, rng) -> list[np.ndarray]:
    """Images of a few WINDOW-frame pieces of a recording, as the stream will see them."""
    frames = recordings.listed_frames(skel)
    starts = rng.integers(0, len(frames) - WINDOW + 1, 3)
    return [preprocess.process_skeleton(recordings.skeleton_from_frames(frames[s : s + WINDOW], 25))
            for s in starts]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> pathlib.Path:
    """A run folder whose checkpoint tells the two actions apart (trained here in ~15 s on 2 cores; no TARM:
    the stream's windows are the point, and the STCM alone tells these two actions apart)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images, labels = [], []
    for label, action in enumerate(ACTIONS):
        for performer in range(1, 13):
            pieces = crops(recording(action, performer, seed=performer), rng)
            images += pieces
            labels += [label] * len(pieces)
    x, y = np.stack(images), np.array(labels)
    model = build_model(2, use_tarm=False)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=12, epochs=6, shuffle=True, verbose=0)
    evaluation.recompute_bn_statistics(model, x)  # few steps: the moving statistics lag (docs/paper.md)
    folder = tmp_path_factory.mktemp("stream") / "run"
    folder.mkdir()
    model.save(folder / "best.keras")
    names = [datasets.ACTION_NAMES[a - 1] for a in ACTIONS]
    attrs = {"dataset": "ntu60", "mode": "faithful", "size": 50, "class_names": names}
    (folder / "config.json").write_text(json.dumps({"config": {}, "data_attrs": attrs}))
    return folder


@pytest.fixture(scope="module")
def predictor(run) -> evaluation.Predictor:
    return evaluation.load_predictor(run / "best.keras")


def evaluate(monkeypatch, capsys, text: str, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    code = evaluate_script.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_frame_lines_round_trip_and_windows_are_training_images(tmp_path):
    text = synthetic.render_sample("S001C001P001R001A050", 3, frames=(40, 40))  # two actors, sensor noise
    path = tmp_path / "S001C001P001R001A050.skeleton"
    path.write_text(text)
    out = io.StringIO()
    assert stream.print_frames([str(path)], out=out) == 40
    lines = out.getvalue().splitlines()
    skel = skeleton_io.read_skeleton(path)
    for line, frame in zip(lines, recordings.listed_frames(skel), strict=True):
        np.testing.assert_array_equal(stream.parse_frame(line, 25), frame)  # bit for bit
    fake = evaluation.Predictor(path, "ntu60", preprocess.DEMO, 50, [], recordings.NTU_SKELETON)  # no model
    windows = stream.SlidingWindow(fake, window=40)
    for line in lines:
        windows.frames.append(stream.parse_frame(line, 25))
    np.testing.assert_array_equal(windows.image(), preprocess.process_skeleton(skel, "faithful", 50))
    assert stream.parse_frame("# a comment", 25) is None
    assert stream.parse_frame("   ", 25).shape == (0, 25, 3)  # a frame without a body
    assert stream.parse_frame(",".join(["0.5"] * 150), 25).shape == (2, 25, 3)


def test_top1_switches_from_the_first_action_to_the_second(run, monkeypatch, capsys):
    first, second = recording(ACTIONS[0], 20, seed=101), recording(ACTIONS[1], 21, seed=102)  # unseen people
    boundary = first.num_frames  # index of the second action's first frame
    lines = frame_lines(first) + frame_lines(second)
    code, out, _ = evaluate(monkeypatch, capsys, "".join(lines), str(run / "best.keras"), "--stream",
                            "--window", str(WINDOW), "--stride", str(STRIDE))
    assert code == 0
    printed = out.strip().splitlines()
    names = [datasets.ACTION_NAMES[a - 1] for a in ACTIONS]
    windows = [(int(line.split()[1]), line.split("  ")[1].rsplit(" ", 1)[0]) for line in printed[:-1]]
    assert [frame for frame, _ in windows] == list(range(WINDOW - 1, len(lines), STRIDE))
    before = [top1 for frame, top1 in windows if frame < boundary]
    after = [top1 for frame, top1 in windows if frame - WINDOW + 1 >= boundary]
    assert before and after
    assert set(before) == {names[0]} and set(after) == {names[1]}, printed
    assert all(line.endswith(" ms)") and line.count("|") == 1 for line in printed[:-1])  # 2 classes: top-2
    assert printed[-1].startswith(f"end of stream: {len(lines)} frames from {len(lines)} lines, ")


def test_malformed_lines_are_reported_with_their_numbers_and_skipped(predictor):
    lines = frame_lines(recording(ACTIONS[0], 3, seed=7, frames=35))
    lines[2] = "1 2 3\n"  # line 3: too few numbers
    lines.insert(5, "0.1 " * 74 + "oops\n")  # line 6: a word
    lines.insert(9, " ".join(["nan"] * 75) + "\n")  # line 10: NaN
    lines.insert(11, "# a comment is no frame\n")  # line 12
    out, err = io.StringIO(), io.StringIO()
    summary = stream.run_stream(lines, predictor, window=30, stride=1, out=out, err=err)
    assert summary.malformed == [3, 6, 10]
    assert err.getvalue().splitlines() == [
        "line 3: expected 75 numbers a body (25 joints x y z), one body or more, found 3; skipped",
        "line 6: expected numbers, found 'oops'; skipped",
        "line 10: expected finite coordinates, found NaN or infinity; skipped",
    ]
    assert summary.frames == 35 - 1 and summary.windows == 34 - 30 + 1
    assert "3 malformed lines skipped (line 3, 6, 10)" in out.getvalue().splitlines()[-1]
    records = io.StringIO()
    stream.run_stream(lines, predictor, window=30, stride=2, json_lines=True, out=records)
    parsed = [json.loads(line) for line in records.getvalue().splitlines()]
    assert [r["line"] for r in parsed if r["type"] == "malformed"] == [3, 6, 10]
    windows = [r for r in parsed if r["type"] == "window"]
    assert [w["frame"] for w in windows] == [29, 31, 33] and all(len(w["top"]) == 2 for w in windows)
    summary = parsed[-1]
    assert summary["type"] == "summary" and summary["windows"] == 3 and summary["malformed_lines"] == [3, 6, 10]


def test_an_empty_stream_ends_with_a_clear_summary(predictor):
    out, err = io.StringIO(), io.StringIO()
    summary = stream.run_stream([], predictor, window=50, out=out, err=err)
    assert out.getvalue() == "end of stream: no frames (no input); no window of 50 frames classified\n"
    assert err.getvalue() == "" and summary.windows == 0
    out = io.StringIO()
    stream.run_stream(frame_lines(recording(ACTIONS[0], 3, 1, frames=10)), predictor, 50, out=out)
    assert out.getvalue() == "end of stream: 10 frames from 10 lines, fewer than the window of 50 frames: " \
                             "no window classified\n"
    out = io.StringIO()
    stream.run_stream(["\n"] * 4, predictor, window=3, stride=1, out=out)  # frames without a body
    assert out.getvalue().splitlines()[0].startswith("frame 2  not classified: expected a body in some frame")


def test_stream_usage_errors_are_one_line(run, monkeypatch, capsys):
    code, out, err = evaluate(monkeypatch, capsys, "", str(run / "best.keras"), "--stream", "--window", "0")
    assert code == 2 and err == "error: expected --window and --stride of at least 1 frame, found 0 and 1\n"
    code, _, err = evaluate(monkeypatch, capsys, "", str(run / "best.keras"), "--stream", "--skeleton", "x.skeleton")
    assert code == 2 and err.count("\n") == 1 and "give one of them" in err
    assert stream.main(["--print-frames", str(run / "config.json")]) == 2
    assert "not a recording format the project reads" in capsys.readouterr().err
