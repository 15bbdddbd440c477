"""mans.evaluation.explain and evaluate.py --explain: the picture of a recording draws the attention frame_attention
returns, marks the padding, and says so when a checkpoint has no TARM; existing pictures are kept."""

import dataclasses
import json
import pathlib

import keras
import numpy as np
import pytest
from PIL import Image
from test_data import load_script

from mans.evaluation import explain
from mans.evaluation import score as evaluation
from mans.formats import ntu as skeleton_io
from mans.network.model import build_model, frame_attention
from mans.preprocessing import datasets, preprocess, synthetic

REPO = pathlib.Path(__file__).resolve().parents[1]
evaluate_script = load_script(REPO, "evaluate")
PNG = b"\x89PNG\r\n\x1a\n"


def run_folder(folder: pathlib.Path, model: keras.Model, dataset: str = "ntu60", size: int = 50) -> pathlib.Path:
    """A run folder as train_MANs.py leaves it, as far as raw-recording prediction reads it."""
    folder.mkdir(parents=True)
    model.save(folder / "best.keras")
    names = list(datasets.get_dataset(dataset).class_names)
    attrs = {"dataset": dataset, "mode": "faithful", "size": size, "class_names": names}
    (folder / "config.json").write_text(json.dumps({"config": {}, "data_attrs": attrs}))
    return folder / "best.keras"


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_model(60, gru_units=8)


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory) -> pathlib.Path:
    return run_folder(tmp_path_factory.mktemp("explain") / "run", model)


def skeleton_file(folder: pathlib.Path, name: str, frames: int, seed: int = 0) -> pathlib.Path:
    path = folder / f"{name}.skeleton"
    path.write_text(synthetic.render_sample(name, seed, frames=(frames, frames)))
    return path


def test_the_picture_draws_the_attention_frame_attention_returns(model, checkpoint, tmp_path):
    short = skeleton_file(tmp_path, "S001C001P001R001A023", frames=40)  # padded: 5 rows before, 5 after
    long = skeleton_file(tmp_path, "S002C003P004R002A050", frames=120, seed=1)  # two actors, sampled to 50
    results = list(explain.explain_files(checkpoint, [short, long], tmp_path / "out", progress=False))
    assert [r.paths for r in results] == [(tmp_path / "out" / f"{f.stem}.png", tmp_path / "out" / f"{f.stem}.json")
                                          for f in (short, long)]
    images = np.stack([result.explanation.image for result in results])
    attention = frame_attention(model, images)  # (2, 3, 50), both recordings in one pass (the GRUs run eagerly)
    predicted = np.asarray(model.predict_on_batch(images))
    for result, expected, scores in zip(results, attention, predicted, strict=True):
        expl, drawn = result.explanation, result.drawn
        assert result.paths[0].read_bytes()[:8] == PNG and result.paths[0].stat().st_size < 400_000
        image = preprocess.process_skeleton(skeleton_io.read_skeleton(result.file), "faithful", 50)
        np.testing.assert_array_equal(expl.image, image)
        np.testing.assert_allclose(drawn["attention"], expected, rtol=1e-5, atol=1e-6)
        mean = expected.mean(0)
        real = expl.real_rows
        assert expl.most == real[np.argmax(mean[real])] and expl.least == real[np.argmin(mean[real])]
        assert {expl.most, expl.least} <= set(drawn["shown"].tolist()) and len(drawn["shown"]) == 5
        np.testing.assert_allclose(drawn["top"], np.sort(scores)[::-1][:5], rtol=1e-5)
        record = json.loads(result.paths[1].read_text())  # the numbers beside the picture
        np.testing.assert_allclose([record["attention"][axis] for axis in "xyz"], expected, rtol=1e-5, atol=1e-6)
        occlusion = expl.importance
        assert record["importance"]["class"] == occlusion.target == int(np.argmax(scores))
        per_row = np.array([np.nan if v is None else v for v in record["importance"]["per_row"]])
        np.testing.assert_allclose(per_row, occlusion.frames, atol=1e-6)
        assert np.isnan(per_row[expl.sources < 0]).all() and np.isfinite(per_row[real]).all()
        np.testing.assert_allclose(drawn["frame_importance"], occlusion.frames, atol=1e-9)
        assert record["attention_spread"] == pytest.approx(float(np.ptp(mean[real])), abs=1e-6)
        assert record["attention_distinct"] == (record["attention_spread"] > record["initial_attention_spread"])
    short_expl, long_expl = results[0].explanation, results[1].explanation
    assert short_expl.sources.tolist() == [-1] * 5 + list(range(40)) + [-1] * 5
    assert long_expl.sources.tolist() == np.linspace(0, 119, 50).astype(int).tolist()
    tarm_out = keras.Model(model.input, model.get_layer("tarm_stack").output).predict_on_batch(long_expl.image[None])
    np.testing.assert_allclose(long_expl.stcm_input, tarm_out[0], rtol=1e-5, atol=1e-6)
    assert len(explain.body_joints(long_expl.image, 10, long_expl.layout)) == 2  # both actors drawn
    assert explain._time_caption(short_expl, 50) == "40 frames, padded with 5 rows before and 5 after"
    assert explain._time_caption(long_expl, 50) == "120 frames sampled to 50 rows"
    resampled = dataclasses.replace(short_expl, sources=np.linspace(0, 39, 50).astype(int))  # --frames resample
    assert explain._time_caption(resampled, 50) == "40 frames resampled onto 50 rows"


def test_explain_command_gif_and_existing_pictures(checkpoint, tmp_path, capsys):
    short = skeleton_file(tmp_path, "S001C001P001R001A027", frames=16)
    out = tmp_path / "pictures"
    argv = [str(checkpoint), "--explain", str(short), "--out", str(out), "--gif"]
    assert evaluate_script.main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"{out / short.stem}.png: top-1 ")
    assert printed[-1].startswith(f"wrote 1 explanation(s) to {out} in ")
    with Image.open(out / f"{short.stem}.gif") as gif:
        assert gif.n_frames == 16  # one per real frame
    before = (out / f"{short.stem}.png").read_bytes()
    assert evaluate_script.main(argv) == 2
    assert capsys.readouterr().err == f"error: {out / short.stem}.png exists; pass --overwrite to replace it\n"
    assert (out / f"{short.stem}.png").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == [f"{short.stem}.{suffix}" for suffix in ("gif", "json", "png")]
    # no temporaries
    (tmp_path / "broken.skeleton").write_text("3\r\n1\r\n")
    assert evaluate_script.main([str(checkpoint), "--explain", str(tmp_path / "broken.skeleton"), "--out",
                                 str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "none").exists()


def test_a_checkpoint_without_tarm_says_there_is_no_attention(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    checkpoint = run_folder(tmp_path / "run", build_model(60, use_tarm=False))
    short = skeleton_file(tmp_path, "S001C001P001R001A010", frames=30)
    assert evaluate_script.main([str(checkpoint), "--explain", str(short), "--out", str(tmp_path / "o")]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "attention" in line]
    assert notes == [f"note: {checkpoint} has no TARM (trained with --no-tarm): there is no attention to show"]
    assert (tmp_path / "o" / f"{short.stem}.png").read_bytes()[:8] == PNG
    result = next(explain.explain_files(checkpoint, [short], tmp_path / "p", progress=False))
    assert result.explanation.attention is None and "attention" not in result.drawn
    np.testing.assert_array_equal(result.explanation.stcm_input, result.explanation.image)


def test_a_utkinect_recording_is_drawn_with_kinect_v1_bones(tmp_path):
    keras.utils.set_random_seed(2)
    checkpoint = run_folder(tmp_path / "run", build_model(10, size=20, gru_units=4), "utkinect", size=20)
    synthetic.write_synthetic_utkinect(tmp_path / "utk", subjects=1, episodes=1)
    predictor = evaluation.load_predictor(checkpoint)
    segments = predictor.read(tmp_path / "utk" / "joints" / "joints_s01_e01.txt")
    assert [s.name for s in segments][:2] == ["s01_e01_walk", "s01_e01_sitDown"] and len(segments) == 9
    expl = explain.explain_recording(predictor, segments[0])
    assert expl.image.shape == (20, 20, 3) and len(expl.bones) == 19 and expl.attention.shape == (3, 20)
    assert len(explain.body_joints(expl.image, expl.shown[0], expl.layout)) == 1
    drawn = explain.draw_explanation(expl, tmp_path / "walk.png")
    np.testing.assert_array_equal(drawn["attention"], expl.attention)


def test_another_class_can_be_explained_and_a_wrong_one_is_one_line(checkpoint, tmp_path, capsys):
    short = skeleton_file(tmp_path, "S001C001P001R001A023", frames=40)
    argv = [str(checkpoint), "--explain", str(short), "--out", str(tmp_path / "o"), "--explain-class", "throw",
            "--importance-window", "8"]
    assert evaluate_script.main(argv) == 0
    record = json.loads((tmp_path / "o" / f"{short.stem}.json").read_text())
    assert record["importance"]["class"] == 6 and record["importance"]["window"] == 8  # throw is NTU's 7th
    capsys.readouterr()
    assert evaluate_script.main([*argv[:5], "--explain-class", "juggling", "--overwrite"]) == 2
    assert capsys.readouterr().err.startswith("error: --explain-class: expected one of the checkpoint's 60 class")
