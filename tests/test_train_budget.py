"""within_budget: the epoch loop stops at the first epoch boundary past the wall-clock budget; the runner refuses
bad options (the budget, a stage's own) before it writes anything."""

import pytest

from l2s.train.budget import within_budget


class _Clock:
    def __init__(self, step_s: float):
        self.now, self.step_s = 0.0, step_s

    def __call__(self) -> float:
        t = self.now
        self.now += self.step_s
        return t


def test_stops_after_the_epoch_that_spends_the_budget():
    # each clock read advances 25 s: epochs end at 25, 50, 75 ... s; a 1-minute budget ends after epoch 3
    assert list(within_budget(range(1, 11), 1.0, clock=_Clock(25.0))) == [1, 2, 3]


def test_no_budget_runs_every_epoch():
    assert list(within_budget(range(1, 6), None, clock=_Clock(1e6))) == [1, 2, 3, 4, 5]
    assert list(within_budget(range(1, 6), 0, clock=_Clock(1e6))) == [1, 2, 3, 4, 5]


def test_a_budget_that_is_not_a_number_is_a_one_line_error(tmp_path):
    from pathlib import Path

    from click.testing import CliRunner

    from l2s.cli import main

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "synthgrid" / "hparams" / "guide.yaml"
    out = tmp_path / "exp"
    r = CliRunner().invoke(main, ["train", str(recipe), f"--data_folder={tmp_path}",
                                  f"--output_folder={out}", "--max_train_minutes=soon"])
    assert r.exit_code == 2 and "max_train_minutes" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("recipe,option,named", [
    ("generator.yaml", "--model={prediction: sample}", "prediction"),
    ("generator.yaml", "--model={residual_prior: maybe}", "residual_prior"),
    ("generator.yaml", "--model={channelz: 8}", "channelz"),
    ("generator.yaml", "--model={feature_dim: 8}", "feature_dim"),  # follows the lip reader
    ("generator.yaml", "--arch=lipvoicer", "arch"),  # a member the stage does not train
    ("prior.yaml", "--speaker_dropout=1.5", "speaker_dropout"),
    ("guide.yaml", "--preset=huge", "preset"),
])
def test_a_bad_stage_option_is_a_one_line_error_before_anything_is_written(tmp_path, recipe, option, named):
    from pathlib import Path

    from click.testing import CliRunner

    from l2s.cli import main

    path = Path(__file__).resolve().parents[1] / "recipes" / "synthgrid" / "hparams" / recipe
    out = tmp_path / "exp"
    r = CliRunner().invoke(main, ["train", str(path), f"--data_folder={tmp_path}", f"--vsr_model={tmp_path}",
                                  f"--prior_model={tmp_path}", f"--output_folder={out}", option])
    assert r.exit_code == 2 and named in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
