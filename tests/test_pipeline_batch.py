"""Batch planning of ``l2s synthesize``: inputs to outputs, finished clips, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from l2s.errors import InputError
from l2s.pipeline.batch import dist_rank, expand_inputs, plan_jobs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_single_input_and_folder_mode(tmp_path):
    a, b = _touch(tmp_path / "in" / "a.mp4"), _touch(tmp_path / "in" / "b.mov")
    _touch(tmp_path / "in" / "a.landmarks.npz")  # sidecars are not inputs
    jobs, folder = plan_jobs([str(a)], str(tmp_path / "o.mp4"))
    assert not folder and jobs[0].output == tmp_path / "o.mp4"
    jobs, folder = plan_jobs([str(tmp_path / "in")], str(tmp_path / "out"), fmt="mp4")
    assert folder and [j.output.name for j in jobs] == ["a.mp4", "b.mp4"]
    assert expand_inputs([str(a), str(b)]) == [a, b]
    jobs, folder = plan_jobs([str(a)], str(tmp_path / "outdir"))  # no suffix: a folder
    assert folder and jobs[0].output == tmp_path / "outdir" / "a.wav"


def test_done_needs_output_and_sidecar(tmp_path):
    a = _touch(tmp_path / "a.mp4")
    job = plan_jobs([str(a)], str(tmp_path / "out" / "a.wav"))[0][0]
    assert not job.done()
    _touch(job.output)
    assert not job.done()  # the sidecar is written last: without it the clip was interrupted
    _touch(job.output.with_suffix(".json"))
    assert job.done()


def test_refusals(tmp_path, monkeypatch):
    a, b = _touch(tmp_path / "x" / "clip.mp4"), _touch(tmp_path / "y" / "clip.mp4")
    with pytest.raises(InputError, match="both write"):
        plan_jobs([str(a), str(b)], str(tmp_path / "out"))
    with pytest.raises(InputError, match="folder"):
        plan_jobs([str(a), str(_touch(tmp_path / "z.mp4"))], str(_touch(tmp_path / "file.wav")))
    with pytest.raises(InputError, match="no video"):
        plan_jobs([str((tmp_path / "empty").mkdir() or tmp_path / "empty")], str(tmp_path / "out"))
    with pytest.raises(InputError, match="output must end"):
        plan_jobs([str(a)], str(tmp_path / "o.txt"))
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InputError):
        dist_rank()
    monkeypatch.setenv("RANK", "1")
    assert dist_rank() == (1, 2)
