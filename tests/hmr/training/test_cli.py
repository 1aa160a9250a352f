"""The train and evaluate commands: argument handling and one-line errors."""

from cli.main import main

OVERRIDES = ['model.backbone="test_resnet"', "model.hidden=32", "train.total_steps=2", "train.log_every=1",
             "data.random_batches=1", "train.batch_size=2"]


def test_train_command_runs_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["train", "--list"]) == 0
    assert "tiny_cpu" in capsys.readouterr().out.split()
    out = tmp_path / "run"
    assert main(["train", "tiny_cpu", *OVERRIDES, "--out", str(out), "--no-progress"]) == 0
    assert "loss=" in capsys.readouterr().out
    assert (out / "config.toml").read_text().count('backbone = "test_resnet"') == 1
    assert main(["train", "tiny_cpu", *OVERRIDES, "--out", str(out), "--no-progress"]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    assert main(["train", "tiny_cpu", *OVERRIDES[:-2], "-s", "train.total_steps=3", "--out", str(out),
                 "--resume", "--no-progress"]) == 0
    assert main(["train", "tiny_cpu", "optim.lr"]) == 2
    assert "section.key=value" in capsys.readouterr().err


def test_evaluate_command_lists_benchmarks_and_checks_arguments(capsys):
    assert main(["evaluate", "--list-benchmarks"]) == 0
    listed = capsys.readouterr().out
    for name in ("3dpw", "h36m-p1", "h36m-p2", "eft-coco-val", "eft-lspet-test", "eft-ochuman-test"):
        assert name in listed
    assert main(["evaluate", "some.pt"]) == 2
    assert "--bench and --data" in capsys.readouterr().err
