"""python -m mans.reproduce --tiny: the paper's table in one command on synthetic NTU recordings, run twice (the
second run keeps the conversion and the finished runs)."""

import json

from mans.evaluation import reproduce


def test_the_tiny_chain_writes_the_table_and_resumes(tmp_path, capsys):
    out = tmp_path / "paper"
    assert reproduce.main(["--tiny", "--out", str(out)]) == 0
    first = json.loads((out / "results.json").read_text())
    assert first["dataset"] == "ntu60"
    assert [(row["variant"], row["benchmark"]) for row in first["rows"]] == [("resnet", "xsub"), ("resnet", "xview")]
    for row in first["rows"]:
        assert 0 <= row["top1"] <= 100 and row["epochs"] == 1 and row["train_samples_per_s"] > 0
        assert (out / f"resnet-{row['benchmark']}" / "evaluation" / "metrics.json").is_file()
    table = (out / "results.md").read_text()
    assert "| network | benchmark | image | top-1 % | paper top-1 % |" in table
    assert "| resnet | xview | 50 x 50 |" in table
    capsys.readouterr()
    assert reproduce.main(["--tiny", "--out", str(out)]) == 0
    again = capsys.readouterr().out
    assert "converted before, kept" in again and again.count("run already complete") == 2
    second = json.loads((out / "results.json").read_text())
    assert [row["top1"] for row in second["rows"]] == [row["top1"] for row in first["rows"]]


def test_the_table_puts_the_papers_figure_beside_each_run():
    row = {"variant": "densenet161", "benchmark": "xsub", "size": 224, "imagenet_weights": "w.h5", "top1": 80.5,
           "top5": 95.0, "paper_top1": 82.67, "epochs": 50, "train_wall_s": 7200.0, "train_samples_per_s": 180.0}
    line = reproduce.table([row]).splitlines()[-1]
    assert line == ("| densenet161 (ImageNet start) | xsub | 224 x 224 | 80.50 | 82.67 | 95.00 | 50 epochs, 2.0 h "
                    "| 180.0 |")


def test_without_skeletons_it_is_one_line(tmp_path, capsys):
    assert reproduce.main(["--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == "error: expected --skeletons (the NTU RGB+D .skeleton folder), or --tiny\n"
