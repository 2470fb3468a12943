"""Batch planning of ``l2s synthesize``: inputs to outputs, finished clips, refusals."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from l2s.errors import InputError, OutputError
from l2s.pipeline.batch import (State, check_not_inputs, dist_rank, expand_inputs, input_identity, job_request,
                                plan_jobs)


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


def _finished(job, settings, **changes):
    """Write what synthesize leaves for a finished job: the output and an l2s sidecar recording its request."""
    _touch(job.output)
    record = {"l2s_version": "0", "output": job.output.name, "request": job_request(job, settings), **changes}
    job.output.with_suffix(".json").write_text(json.dumps(record))


def test_states_new_done_stale_foreign(tmp_path):
    a, b = _touch(tmp_path / "a.mp4"), _touch(tmp_path / "b.mp4")
    settings = {"steps": 3, "seed": 0}
    job = plan_jobs([str(a)], str(tmp_path / "out" / "a.wav"))[0][0]
    job = replace(job, request=job_request(job, settings))
    assert job.state() == (State.NEW, "")
    _touch(job.output)  # audio without an l2s sidecar: someone else's file (or a run killed mid-write)
    assert job.state()[0] is State.FOREIGN and "not written by l2s" in job.state()[1]
    job.output.with_suffix(".json").write_text('{"mine": true}')  # a JSON l2s did not write
    assert job.state()[0] is State.FOREIGN
    _finished(job, settings)
    assert job.state() == (State.DONE, "") and job.done()
    assert job.state(plot=True) == (State.STALE, "it has no plot yet")
    _finished(job, {"steps": 5, "seed": 0})  # other settings
    assert job.state() == (State.STALE, "it was made with other settings (steps 5 -> 3)")
    _finished(job, settings, request={"input": input_identity(b), "settings": settings})  # another input
    assert job.state()[0] is State.STALE and str(b) in job.state()[1]
    _finished(job, settings)
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))  # the input was touched since
    job = replace(job, request=job_request(job, settings))  # what the next run asks for
    assert job.state() == (State.STALE, "its input has changed since")
    _finished(job, settings, request=None)  # a sidecar from before requests were recorded
    assert job.state()[0] is State.STALE
    job.output.unlink()
    assert job.state() == (State.STALE, "its sidecar is there but not the output")


def test_outputs_that_are_inputs_are_refused(tmp_path):
    a = _touch(tmp_path / "in" / "a.mp4")
    (tmp_path / "link.mp4").symlink_to(a)
    os.link(a, tmp_path / "hard.mp4")
    for out in (a, tmp_path / "link.mp4", tmp_path / "hard.mp4"):
        jobs, _ = plan_jobs([str(a)], str(out))
        with pytest.raises(OutputError, match="never writes over its inputs"):
            check_not_inputs(jobs)
    jobs, _ = plan_jobs([str(tmp_path / "in")], str(tmp_path / "in"), fmt="mp4")  # the input folder, as mp4
    with pytest.raises(OutputError, match="a.mp4: is one of the inputs"):
        check_not_inputs(jobs)
    ref = _touch(tmp_path / "ref.wav")
    jobs, _ = plan_jobs([str(a)], str(ref))
    with pytest.raises(OutputError):
        check_not_inputs(jobs, protected=[ref])
    check_not_inputs(plan_jobs([str(tmp_path / "in")], str(tmp_path / "in"))[0])  # a.wav beside a.mp4 is fine


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
    with pytest.raises(InputError, match="2 inputs need an output folder, and this names a .wav file"):
        plan_jobs([str(a), str(tmp_path / "z.mp4")], str(tmp_path / "multi.wav"))
    assert not (tmp_path / "multi.wav").exists()
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    with pytest.raises(InputError, match="loop.mp4: symbolic link loop"):
        plan_jobs([str(tmp_path / "loop.mp4")], str(tmp_path / "o.wav"))
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    with pytest.raises(InputError, match="broken symbolic link"):
        expand_inputs([str(tmp_path / "dangling.mp4")])
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InputError):
        dist_rank()
    monkeypatch.setenv("RANK", "1")
    assert dist_rank() == (1, 2)
