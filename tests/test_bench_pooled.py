"""bench/bench_pooled.py's verdicts: the issue's rule on the pooled difference, and the cost clause for slow recipes."""

import importlib.util
import json
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pooled():
    spec = importlib.util.spec_from_file_location("bench_pooled", REPO / "bench" / "bench_pooled.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows_of(pooled, recipe, top1, seconds=100.0, seeds=(1, 2)):
    """One row per fold of every dataset and seed; top1: {dataset: {seed: figure}} or a number for all."""
    rows = []
    for dataset, (_, _, subjects) in pooled.DATASETS.items():
        for seed in seeds:
            figure = top1 if isinstance(top1, float) else top1[dataset][seed]
            for subject in subjects:
                rows.append({"recipe": recipe, "dataset": dataset, "subject": subject, "seed": seed,
                             "key": pooled.run_key(recipe, dataset, subject, seed), "top1": figure,
                             "train_seconds": seconds})
    return rows


def verdict_of(table: str, recipe: str) -> str:
    (line,) = [line for line in table.splitlines() if line.startswith(f"| {recipe} ")]
    return line.rstrip(" |").split(" | ")[-1]


def grouped(pooled, rows, scores=None):
    return pooled.recipe_groups(rows, scores or {})


def per_dataset(pooled, by_seed):
    return {dataset: by_seed for dataset in pooled.DATASETS}


def test_a_recipe_that_gains_on_the_pooled_mean_wins(pooled):
    rows = rows_of(pooled, "default", 80.0) + rows_of(pooled, "better", 81.0)
    assert verdict_of(pooled.paired_against(grouped(pooled, rows)), "better") == "wins"


def test_a_dataset_losing_more_than_a_point_blocks_the_win(pooled):
    figures = {d: {1: 84.0, 2: 84.0} for d in pooled.DATASETS} | {"msr-action3d": {1: 78.5, 2: 78.5}}
    rows = rows_of(pooled, "default", 80.0) + rows_of(pooled, "uneven", figures)
    assert verdict_of(pooled.paired_against(grouped(pooled, rows)), "uneven") == "does not win"


def test_a_costly_recipe_must_gain_on_every_seed(pooled):
    one_seed = per_dataset(pooled, {1: 83.0, 2: 79.0})  # pooled +1.0, seed 2 -1.0
    every_seed = per_dataset(pooled, {1: 81.0, 2: 80.5})
    rows = (rows_of(pooled, "default", 80.0) + rows_of(pooled, "slow, one seed", one_seed, seconds=200.0)
            + rows_of(pooled, "slow, every seed", every_seed, seconds=200.0)
            + rows_of(pooled, "cheap, one seed", one_seed, seconds=110.0))
    table = pooled.paired_against(grouped(pooled, rows))
    assert verdict_of(table, "slow, one seed").startswith("does not win: x2.00 the training")
    assert verdict_of(table, "slow, every seed") == "wins"
    assert verdict_of(table, "cheap, one seed") == "wins"
    assert "| 1: +3.0, 2: -1.0 | x2.00 |" in table


def test_a_recipe_missing_folds_gets_no_verdict(pooled):
    rows = rows_of(pooled, "default", 80.0) + rows_of(pooled, "started", 90.0)[:3]
    assert verdict_of(pooled.paired_against(grouped(pooled, rows)), "started (partial)") == "-"


def own_verdict(table: str, recipe: str, dataset: str) -> str:
    (line,) = [line for line in table.splitlines() if line.startswith(f"| {recipe} | {dataset} |")]
    return line.rstrip(" |").split(" | ")[-1]


def test_a_dataset_takes_its_own_setting_on_three_seeds_that_all_gain(pooled):
    seeds = (1, 2, 3)
    base = rows_of(pooled, "demo TARM start", 80.0, seeds=seeds)
    gains = {d: {1: 82.0, 2: 81.5, 3: 83.0} for d in pooled.DATASETS} | {"utkinect": {1: 84.0, 2: 79.5, 3: 84.0}}
    settled = {d: {1: 82.0, 2: 80.0} for d in pooled.DATASETS}  # seed 2 gains nothing: no third seed can help
    rows = (base + rows_of(pooled, "stream", gains, seeds=seeds) + rows_of(pooled, "two seeds", 90.0)
            + rows_of(pooled, "settled early", settled))
    table = pooled.own_defaults(grouped(pooled, rows), baseline="demo TARM start")
    assert own_verdict(table, "stream", "msr-action3d") == "its own default"
    assert own_verdict(table, "stream", "utkinect") == "not its own default"  # +2.8 on the mean, seed 2 loses
    assert own_verdict(table, "two seeds", "utd-mhad") == "open: 2 of 3 seeds"
    assert own_verdict(table, "settled early", "utd-mhad") == "not its own default"
    assert "| stream | utd-mhad | 1 2 3 | 1: +2.0, 2: +1.5, 3: +3.0 | +2.2 |" in table


def test_the_direction_pairs_count_the_fused_scores(pooled, tmp_path, monkeypatch):
    monkeypatch.setattr(pooled, "FUSED", {"fused: a + b": ("a", "b")})
    rows, entries = [], []
    # UT-Kinect's sitDown (action 2, label 1) taken for standUp by stream a, right by b, which is surer
    for recipe, scores in (("a", [[0.0, 0.4, 0.6]]), ("b", [[0.0, 0.9, 0.1]])):
        key = pooled.run_key(recipe, "utkinect", 1, 1)
        rows.append({"recipe": recipe, "dataset": "utkinect", "subject": 1, "seed": 1, "key": key, "top1": 0.0,
                     "train_seconds": 1.0})
        entries.append(json.dumps({"key": key, "names": ["s"], "labels": [1], "scores": scores}))
    path = tmp_path / "scores.jsonl"
    path.write_text("\n".join(entries) + "\n")
    scores = pooled.read_scores(path)
    table = pooled.pair_confusions(grouped(pooled, rows, scores), scores)
    assert "| a | utkinect | 2 / 3 | 1 | 1 | 0 |" in table
    assert "| fused: a + b | utkinect | 2 / 3 | 1 | 0 | 1 |" in table


def test_a_study_pins_its_runs_to_the_cores_it_is_given(pooled, monkeypatch):
    pinned = []
    monkeypatch.setattr(pooled, "converted", lambda *args: None)
    monkeypatch.setattr(pooled, "_run_pinned", lambda job, core: pinned.append(core) or {})
    monkeypatch.setattr(pooled, "_record", lambda future, commit: future.result())
    jobs = [{"recipe": "default", "dataset": "utkinect", "subject": s, "seed": 1, "data_root": "."} for s in (1, 3, 5)]
    pooled.run_study(jobs, [1], commit=False)
    assert pinned == [1, 1, 1]
    pinned.clear()
    pooled.run_study(jobs, [0, 1], commit=False)
    assert len(pinned) == 3 and set(pinned) == {0, 1}


def test_the_default_commands_take_each_dataset_from_its_own_recipe(pooled, monkeypatch):
    monkeypatch.setattr(pooled, "FUSED", {})
    monkeypatch.setattr(pooled, "COMMANDS", {"commands": {"utkinect": "a", "msr-action3d": "b", "utd-mhad": "b"},
                                             "commands, new": {"utkinect": "c", "msr-action3d": "c", "utd-mhad": "c"}})
    rows = (rows_of(pooled, "a", 90.0) + rows_of(pooled, "b", 80.0) + rows_of(pooled, "c", 85.0))
    groups = grouped(pooled, rows)
    assert {(row["dataset"], row["recipe"]) for row in groups["commands"]} == {
        ("utkinect", "a"), ("msr-action3d", "b"), ("utd-mhad", "b")}
    table = pooled.paired_against(groups, baseline="commands")
    assert "| commands, new | -5.0 (10) | +5.0 (10) | +5.0 (8) |" in table
