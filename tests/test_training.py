"""mans.training.fit and train_MANs.py: settings precedence, run-folder rules, resume state, user errors,
data-parallel training on two logical CPU devices."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from test_data import load_script, make_synthetic_h5

from mans.training import callbacks, checkpoints, runfolder, train_config
from mans.training import data as data_lib
from mans.training.data import UsageError

REPO = pathlib.Path(__file__).resolve().parents[1]
train_MANs = load_script(REPO, "train_MANs")

# --no-tarm: these tests are about the run folder and the settings; the TARM's GRUs would triple the time that
# tracing the training step takes (tests/test_end_to_end.py trains with TARM, killed, resumed and evaluated)
TINY = ["--epochs", "1", "--batch-size", "8", "--steps-per-epoch", "2", "--gru-units", "4", "--no-tarm"]


@pytest.fixture(scope="module")
def h5(repo_root, tmp_path_factory):
    return make_synthetic_h5(repo_root, tmp_path_factory.mktemp("training"), samples=80)


def test_precedence_flag_over_dataset_over_paper():
    config, sources = train_config.resolve_config(
        {"data": "d.h5", "out": "o", "batch_size": 16, "epochs": None}, {"batch_size": 32, "epochs": 200}
    )
    assert (config.batch_size, sources["batch_size"]) == (16, "flag")
    assert (config.epochs, sources["epochs"]) == (200, "dataset")
    assert (config.lr, sources["lr"]) == (0.01, "paper")
    assert (config.val, sources["val"]) == ("holdout", "ours")
    assert (config.gru_units, config.dropout, sources["dropout"]) == (64, 0.5, "variant")
    config, _ = train_config.resolve_config({"data": "d", "out": "o", "variant": "densenet161"})
    assert (config.gru_units, config.dropout, config.recurrent_dropout) == (128, 0.0, 0.0)


def test_paper_defaults():
    config, _ = train_config.resolve_config({"data": "d", "out": "o"})
    assert (config.lr, config.momentum, config.nesterov, config.batch_size, config.epochs) == (0.01, 0.9, True, 128, 50)
    assert (config.reduce_lr_factor, config.reduce_lr_patience, config.reduce_lr_cooldown, config.min_lr) == (
        0.2,
        5,
        3,
        1e-4,
    )
    assert (config.l2, config.reset_after, config.variant) == (1e-4, False, "resnet")


def test_label_smoothing_loss_matches_keras_and_the_crop_flag_reaches_the_model(h5, tmp_path):
    from mans.network import regularise

    labels = np.array([0, 2, 1])
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3]], np.float32)
    smoothed = regularise.training_loss(0.1)(labels, scores)
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[labels], scores)
    np.testing.assert_allclose(float(smoothed), float(expected), rtol=1e-6)
    assert regularise.training_loss(0.0) == "sparse_categorical_crossentropy"
    out = tmp_path / "run"
    assert train_MANs.main(["--data", str(h5), "--out", str(out), *TINY, "--augment", "--crop", "0.3",
                            "--label-smoothing", "0.1", "--val", "none"]) == 0
    record = json.loads((out / "config.json").read_text())
    assert (record["config"]["crop"], record["sources"]["crop"]) == (0.3, "flag")
    assert (record["config"]["label_smoothing"], record["sources"]["label_smoothing"]) == (0.1, "flag")
    model = keras.saving.load_model(out / "last.keras")
    assert model.get_layer("augment_crop").strength == 0.3
    assert model.loss.label_smoothing == 0.1


def test_tarm_identity_start_reaches_the_saved_model(h5, tmp_path):
    out = tmp_path / "run"
    tiny_with_tarm = [flag for flag in TINY if flag != "--no-tarm"]
    assert train_MANs.main(["--data", str(h5), "--out", str(out), *tiny_with_tarm, "--tarm-identity-start",
                            "--val", "none"]) == 0
    record = json.loads((out / "config.json").read_text())
    assert (record["config"]["tarm_identity_start"], record["sources"]["tarm_identity_start"]) == (True, "flag")
    model = keras.saving.load_model(out / "last.keras")
    assert all(model.get_layer(f"tarm_{axis}").identity_start for axis in "xyz")


def test_mixup_trains_on_soft_targets_and_validates_on_one_hot(h5, tmp_path):
    from mans.network import regularise

    soft = np.array([[0.7, 0.3, 0.0], [0.0, 0.0, 1.0]], np.float32)
    scores = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]], np.float32)
    expected = -np.mean(np.sum(soft * np.log(scores), axis=1))
    np.testing.assert_allclose(float(regularise.training_loss(0.0, dense=True)(soft, scores)), expected, rtol=1e-5)
    out = tmp_path / "run"
    assert train_MANs.main(["--data", str(h5), "--out", str(out), *TINY, "--mixup", "0.2", "--val", "holdout"]) == 0
    record = json.loads((out / "config.json").read_text())
    assert (record["config"]["mixup"], record["sources"]["mixup"]) == (0.2, "flag")
    log = (out / "log.csv").read_text().splitlines()
    assert {"accuracy", "val_accuracy", "val_top5"} <= set(log[0].split(",")) and len(log) == 2
    assert isinstance(keras.saving.load_model(out / "last.keras").loss, keras.losses.CategoricalCrossentropy)
    config, _ = train_config.resolve_config({"data": "d", "out": "o", "mixup": -1.0})
    with pytest.raises(UsageError, match="mixup must be >= 0"):
        train_config.check_config(config)


def test_unknown_and_bad_settings():
    with pytest.raises(UsageError, match="unknown setting .'batchsize'.*batch_size"):
        train_config.resolve_config({"data": "d", "out": "o", "batchsize": 3})
    with pytest.raises(UsageError, match="unknown dataset default"):
        train_config.resolve_config({"data": "d", "out": "o"}, {"learning_rate": 1})
    config, _ = train_config.resolve_config({"data": "d", "out": "o", "momentum": 1.5})
    with pytest.raises(UsageError, match="momentum must be in"):
        train_config.check_config(config)


def test_checkpoint_state_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    checkpoints.save_checkpoint(model, tmp_path / "last.keras", {"epochs_done": 4, "best_value": 0.5})
    assert checkpoints.read_checkpoint_state(tmp_path / "last.keras") == {"epochs_done": 4, "best_value": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.keras"]  # no temporary file left
    keras.saving.load_model(tmp_path / "last.keras")  # the extra member does not disturb Keras


def test_a_checkpoint_saved_once_is_copied_to_best(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    checkpoints.save_checkpoint(model, tmp_path / "last.keras", {"epochs_done": 1}, copies=[tmp_path / "best.keras"])
    assert (tmp_path / "best.keras").read_bytes() == (tmp_path / "last.keras").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "last.keras"]
    checkpoints.save_checkpoint(model, tmp_path / "last.keras", {"epochs_done": 2})
    assert checkpoints.read_checkpoint_state(tmp_path / "best.keras") == {"epochs_done": 1}
    assert checkpoints.read_checkpoint_state(tmp_path / "last.keras") == {"epochs_done": 2}


def test_reseed_dropout_is_deterministic():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5), keras.layers.Dropout(0.5)])
    states = [v for v in model.variables if v.name == "seed_generator_state"]
    assert len(states) == 2
    callbacks.reseed_dropout(model, 1, 3)
    first = [np.asarray(v) for v in states]
    model(np.ones((2, 4)), training=True)
    callbacks.reseed_dropout(model, 1, 3)
    assert all(np.array_equal(a, np.asarray(v)) for a, v in zip(first, states, strict=True))
    callbacks.reseed_dropout(model, 1, 4)
    assert not np.array_equal(first[0], np.asarray(states[0]))


def test_reduce_lr_state_survives_train_begin():
    callback = callbacks.ResumableReduceLROnPlateau(initial_state={"wait": 2, "cooldown_counter": 1, "best": 0.7})
    callback.on_train_begin()
    assert callback.get_state() == {"wait": 2, "cooldown_counter": 1, "best": 0.7}


def test_log_rows_of_unsaved_epochs_are_dropped(tmp_path):
    log = tmp_path / "log.csv"
    log.write_bytes(b"epoch,loss\r\n0,2.5\r\n1,2.0\r\n2,1.5\r\n")
    runfolder.truncate_log(log, 2)  # the run saved 2 epochs, then died after logging a third
    assert log.read_bytes() == b"epoch,loss\r\n0,2.5\r\n1,2.0\r\n"


def run_script(capsys, *argv: str) -> tuple[int, str]:
    code = train_MANs.main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_bad_inputs_are_one_line_errors(capsys, tmp_path, h5):
    out = tmp_path / "run"
    assert_one_line_error(*run_script(capsys, "--data", str(tmp_path / "no.h5"), "--out", str(out)), "no.h5")
    not_h5 = tmp_path / "x.h5"
    not_h5.write_text("hello")
    assert_one_line_error(*run_script(capsys, "--data", str(not_h5), "--out", str(out)), "x.h5")
    assert_one_line_error(*run_script(capsys, "--data", str(h5), "--out", str(out), "--benchmark", "xset"), "xview")
    assert_one_line_error(
        *run_script(capsys, "--data", str(h5), "--out", str(out), "--variant", "densenet161"), "224", "--size 224"
    )
    assert_one_line_error(*run_script(capsys, "--data", str(h5), "--out", str(out), "--lr", "-1"), "lr")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(pathlib.Path(h5).read_bytes()[:5000])
    for benchmark in ("xsub", "loso"):  # a multi-fold benchmark opens the file before the run's own checks
        assert_one_line_error(*run_script(capsys, "--data", str(truncated), "--out", str(out), "--benchmark",
                                          benchmark), "truncated.h5", "truncated file")
    assert not out.exists()


def test_run_folder_rules(capsys, tmp_path, h5):
    out = tmp_path / "run"
    code, _ = run_script(capsys, "--data", str(h5), "--out", str(out), *TINY)
    assert code == 0
    assert {"config.json", "best.keras", "last.keras", "state.json", "log.csv"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "config.json").read_text())
    assert record["sources"]["batch_size"] == "flag" and record["sources"]["lr"] == "paper"
    assert record["data_attrs"]["dataset"] == "ntu60" and record["versions"]["keras"] == keras.__version__
    assert record["argv"][0] == "train_MANs.py" and "validation" in record
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    code = train_MANs.main(["--data", str(h5), "--out", str(out), *TINY])
    assert code == 0 and "run already complete" in capsys.readouterr().out

    assert_one_line_error(*run_script(capsys, "--data", str(h5), "--out", str(out), *TINY, "--lr", "0.1"), "lr")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing overwritten

    earlier = json.loads((out / "config.json").read_text())  # as a version before --crop and --label-smoothing
    del earlier["config"]["crop"], earlier["config"]["label_smoothing"]
    (out / "config.json").write_text(json.dumps(earlier))
    code = train_MANs.main(["--data", str(h5), "--out", str(out), *TINY])
    assert code == 0 and "run already complete" in capsys.readouterr().out

    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    assert_one_line_error(*run_script(capsys, "--data", str(h5), "--out", str(stranger), *TINY), "not a run folder")

    code, _ = run_script(capsys, "--data", str(h5), "--out", str(out), *TINY, "--lr", "0.1", "--overwrite")
    assert code == 0
    assert json.loads((out / "config.json").read_text())["config"]["lr"] == 0.1


def test_script_error_has_no_traceback(repo_root, tmp_path):
    result = subprocess.run(
        [sys.executable, str(repo_root / "train_MANs.py"), "--data", str(tmp_path / "none.h5"), "--out", "x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


TWO_TF_DEVICES = """
import sys, runpy, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.argv = ["train_MANs.py", *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def distributed_run(repo_root: pathlib.Path, tmp_path: pathlib.Path, h5, backend: str) -> str:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(repo_root)}
    # JAX refuses batches that do not split evenly: validate on the test split, whatever its size.
    val = "none" if backend == "tensorflow" else "test"
    argv = ["--data", str(h5), "--out", str(tmp_path / backend), *TINY, "--distribute", "--val", val]
    if backend == "tensorflow":
        command = [sys.executable, "-c", TWO_TF_DEVICES, *argv]
    else:
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        command = [sys.executable, str(repo_root / "train_MANs.py"), *argv]
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo_root, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert (tmp_path / backend / "last.keras").is_file()
    return result.stdout + result.stderr


def test_distribute_tensorflow_two_logical_cpus(repo_root, tmp_path, h5):
    assert "data-parallel over 2 devices" in distributed_run(repo_root, tmp_path, h5, "tensorflow")


def test_distribute_jax_two_host_devices(repo_root, tmp_path, h5):
    pytest.importorskip("jax")
    assert "data-parallel over 2 devices" in distributed_run(repo_root, tmp_path, h5, "jax")


def test_cosine_schedule_warms_up_then_decays_to_min_lr():
    config, _ = train_config.resolve_config(
        {"data": "d", "out": "o", "schedule": "cosine", "epochs": 10, "warmup_epochs": 2, "lr": 0.1, "min_lr": 0.001}
    )
    schedule = train_config.learning_rate(config, steps_per_epoch=5)
    rate = lambda step: float(keras.ops.convert_to_numpy(schedule(step)))  # noqa: E731
    assert rate(0) == 0.0 and rate(5) == pytest.approx(0.05) and rate(10) == pytest.approx(0.1)
    assert rate(30) == pytest.approx(0.001 + (0.1 - 0.001) / 2, rel=1e-5)  # half-way through the decay
    assert rate(50) == pytest.approx(0.001, rel=1e-4)
    plateau, _ = train_config.resolve_config({"data": "d", "out": "o"})
    assert (plateau.schedule, train_config.learning_rate(plateau, 5)) == ("plateau", 0.01)
    with pytest.raises(UsageError, match="warmup_epochs must be in"):
        train_config.check_config(dataclasses.replace(config, warmup_epochs=10))
    with pytest.raises(UsageError, match="schedule must be one of"):
        train_config.check_config(dataclasses.replace(config, schedule="step"))


def test_bn_recompute_rewrites_both_checkpoints_once(capsys, tmp_path, h5):
    from mans.evaluation import score as evaluation
    from mans.network import batchnorm

    out = tmp_path / "bn"
    args = ["--data", str(h5), "--out", str(out), "--val", "none", "--schedule", "cosine", "--bn-recompute", *TINY]
    assert train_MANs.main(args) == 0
    assert "BatchNormalization statistics recomputed on" in capsys.readouterr().out
    state = checkpoints.read_checkpoint_state(out / "last.keras")
    assert state["bn_recomputed"] > 0 and json.loads((out / "state.json").read_text())["bn_recomputed"]
    assert checkpoints.read_checkpoint_state(out / "best.keras") == state  # the same epoch, recomputed once
    model = evaluation.load_checkpoint(out / "last.keras")
    bn = model.get_layer("stcm_final_bn")
    before = [np.array(v) for v in (bn.moving_mean, bn.moving_variance)]
    data = data_lib.open_data(h5)
    fit = data_lib.select_splits(data, "xsub", val="none", seed=1234).fit
    batchnorm.recompute_bn_statistics(model, data_lib.load_rows(h5, batchnorm.bn_rows(fit, seed=1234)))
    np.testing.assert_allclose(np.array(bn.moving_mean), before[0], rtol=1e-5, atol=1e-6)  # already population stats
    np.testing.assert_allclose(np.array(bn.moving_variance), before[1], rtol=1e-5, atol=1e-6)
    assert train_MANs.main(args) == 0
    assert "run already complete" in capsys.readouterr().out


def test_ema_saves_the_moving_average_of_the_weights(h5, tmp_path):
    out = tmp_path / "ema"
    assert train_MANs.main(["--data", str(h5), "--out", str(out), *TINY, "--ema", "0.5", "--val", "none"]) == 0
    assert json.loads((out / "state.json").read_text())["ema_applied"] is True
    for name in ("last.keras", "best.keras"):
        model = keras.saving.load_model(out / name)
        averages = model.optimizer._model_variables_moving_average  # Keras' EMA slots, saved with the optimizer
        assert len(averages) == len(model.trainable_weights) > 0
        for weight, average in zip(model.trainable_weights, averages, strict=True):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), keras.ops.convert_to_numpy(average))
    with pytest.raises(UsageError, match="ema must be in"):
        train_config.check_config(train_config.resolve_config({"data": "d", "out": "o", "ema": 1.0})[0])


def test_seeds_train_one_run_per_seed_in_its_own_folder(tmp_path, capsys, monkeypatch):
    from mans.training import fit as training

    trained = []
    monkeypatch.setattr(training, "train_one", lambda flags, argv=None: trained.append((flags["seed"], flags["out"])))
    out = tmp_path / "run"
    training.train({"data": str(tmp_path / "a.h5"), "out": str(out), "seeds": [3, 1], "seed": None})
    assert trained == [(3, str(out / "seed-3")), (1, str(out / "seed-1"))]
    printed = capsys.readouterr().out
    assert "== seed 3 (1/2)" in printed and f"evaluate.py {out}" in printed
    for folder in ("seed-3", "seed-1", "seed-x", "seeds"):
        (out / folder).mkdir(parents=True)
    assert [p.name for p in runfolder.seed_folders(out)] == ["seed-1", "seed-3"]
    with pytest.raises(UsageError, match="not both"):
        training.train({"data": "a.h5", "out": str(out), "seeds": [1, 2], "seed": 5})
    with pytest.raises(UsageError, match="differ"):
        training.train({"data": "a.h5", "out": str(out), "seeds": [1, 1]})


def test_init_from_copies_every_matching_layer_and_starts_a_new_classifier(tmp_path):
    from mans.network.model import build_model

    keras.utils.set_random_seed(1)
    source = build_model(20, augmentation={"rotation": 30.0}, augmentation_seed=1)
    source.save(tmp_path / "msr.keras")
    keras.utils.set_random_seed(2)
    target = build_model(10, augmentation={"rotation": 30.0}, augmentation_seed=2)
    before = target.get_layer("predictions").get_weights()
    copied, skipped = checkpoints.init_weights_from(target, tmp_path / "msr.keras")
    assert skipped == ["predictions"] and "tarm_x" in copied and len(copied) > 10
    for name in copied:
        ours, theirs = target.get_layer(name).get_weights(), source.get_layer(name).get_weights()
        for mine, copy in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(mine, copy)
    for ours, fresh in zip(target.get_layer("predictions").get_weights(), before, strict=True):
        np.testing.assert_array_equal(ours, fresh)
    (tmp_path / "broken.keras").write_text("not a zip")
    with pytest.raises(UsageError, match="broken.keras: expected a .keras checkpoint"):
        checkpoints.init_weights_from(target, tmp_path / "broken.keras")
    with pytest.raises(UsageError, match="init_from: expected a .keras checkpoint, found no file"):
        train_config.check_config(dataclasses.replace(train_config.resolve_config({"data": "a", "out": "b"})[0],
                                                         init_from=str(tmp_path / "absent.keras")))



def test_none_turns_off_a_datasets_init_from():
    given = {"init_from": "runs/msr/last.keras"}
    config, sources = train_config.resolve_config({"data": "a", "out": "b"}, given)
    assert config.init_from == "runs/msr/last.keras" and sources["init_from"] == "dataset"
    assert train_config.resolve_config({"data": "a", "out": "b", "init_from": "none"}, given)[0].init_from is None


def test_reseed_dropout_fits_an_int32_state_as_pytorch_keeps_it():
    state = keras.Variable(np.zeros(2, np.int32), dtype="int32", name="seed_generator_state", trainable=False)
    holder = type("Holder", (), {"variables": [state]})()
    for epoch in range(20):  # SeedSequence states above 2**31 come up within a few epochs
        callbacks.reseed_dropout(holder, 1, epoch)
        assert 0 <= int(np.asarray(state)[0]) < 2**31
