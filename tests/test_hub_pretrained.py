"""Hub conventions: save_pretrained -> from_pretrained, the hub options, push_to_hub through HfApi, the
model card, and one-line messages when the Hub cannot be had (no network is used: the failures are real
ones against an unreachable endpoint or an empty cache, and uploads go to a stand-in HfApi)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

from l2s.bench import write_synthetic_clip
from l2s.cli import main
from l2s.errors import InputError, ModelError
from l2s.hub import HubOptions, resolve
from l2s.pipeline import Lip2Speech, build_untrained_pipeline

FRAMES = 20


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_untrained_pipeline(tmp_path_factory.mktemp("model") / "micro", "micro")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_synthetic_clip(path, FRAMES, seed=3)
    return path


def _digests(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.safetensors"))}


def test_save_pretrained_round_trip_gives_byte_identical_output(model, clip, tmp_path):
    pipe = Lip2Speech.from_pretrained(model, device="cpu")
    before = pipe(clip, steps=2, seed=0)
    saved = pipe.save_pretrained(tmp_path / "saved")
    again = Lip2Speech.from_pretrained(saved, device="cpu")(clip, steps=2, seed=0)
    assert again.wav.dtype == before.wav.dtype and again.wav.tobytes() == before.wav.tobytes()
    assert again.mel.tobytes() == before.mel.tobytes() and again.text == before.text
    assert _digests(saved) == _digests(model) and len(_digests(saved)) >= 4  # the weights, byte for byte
    card = (saved / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["library_name"] == "l2s" and meta["license"] == "apache-2.0"
    # saving again over its own earlier output is allowed, over a folder of something else is not
    pipe.save_pretrained(saved)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="refusing to replace"):
        pipe.save_pretrained(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_from_pretrained_hands_the_hub_options_to_snapshot_download(model, monkeypatch, tmp_path):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(**kwargs):
        calls.append(kwargs)
        return str(model)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    pipe = Lip2Speech.from_pretrained("someone/l2s-micro", device="cpu", revision="v1", cache_dir=tmp_path,
                                      local_files_only=True, token="hf_x")
    assert pipe.root == model
    (call,) = calls
    assert call["repo_id"] == "someone/l2s-micro" and call["revision"] == "v1"
    assert call["cache_dir"] == tmp_path and call["local_files_only"] is True and call["token"] == "hf_x"
    assert call["library_name"] == "l2s"


def test_unreachable_hub_is_one_line_that_says_so(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelError) as info:
        resolve("someone/l2s-model", HubOptions(cache_dir=tmp_path))
    message = str(info.value)
    assert "\n" not in message and message.startswith("someone/l2s-model: not in the Hub cache")
    assert "cannot be reached" in message and "LocalEntryNotFoundError" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_offline_and_not_cached_is_one_line_that_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"someone/l2s-model: not in the Hub cache .*, and offline"):
        resolve("someone/l2s-model", HubOptions(cache_dir=tmp_path))
    result = CliRunner().invoke(main, ["synthesize", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "o.wav"),
                                       "--model", "someone/l2s-model"], env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 2


def test_each_hub_refusal_has_its_own_words():
    from huggingface_hub.utils import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    from l2s.hub import hub_error

    def http(cls, status):  # what the Hub's client raises, with a stand-in for its HTTP response
        return cls(f"{status} from the Hub", response=SimpleNamespace(status_code=status, headers={}, request=None))

    opts = HubOptions(revision="v9")
    assert "no such model repo" in str(hub_error("a/b", http(RepositoryNotFoundError, 404), opts))
    assert "gated repo" in str(hub_error("a/b", http(GatedRepoError, 403), opts))
    assert "no revision 'v9'" in str(hub_error("a/b", http(RevisionNotFoundError, 404), opts))
    refused = str(hub_error("a/b", http(HfHubHTTPError, 500), opts, action="upload"))
    assert "refused the upload (HTTP 500)" in refused
    assert "cannot be reached" in str(hub_error("a/b", ConnectionError("reset"), opts))


class _RecordingApi:
    """Stands in for huggingface_hub.HfApi: records what would be sent."""

    instances: list = []

    def __init__(self, token=None, library_name=None, **_):
        self.token, self.calls = token, []
        _RecordingApi.instances.append(self)

    def create_repo(self, repo_id, repo_type=None, private=None, exist_ok=False):
        self.calls.append(("create_repo", repo_id, private, exist_ok))

    def create_branch(self, repo_id, branch, exist_ok=False):
        self.calls.append(("create_branch", repo_id, branch))

    def upload_folder(self, repo_id, folder_path, repo_type=None, revision=None, commit_message=None,
                      create_pr=False):
        files = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file())
        self.calls.append(("upload_folder", repo_id, revision, commit_message, files))

        class Info:
            commit_url = f"https://huggingface.co/{repo_id}/commit/0"

        return Info()


def test_push_to_hub_uploads_what_save_pretrained_writes(model, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", _RecordingApi)
    _RecordingApi.instances.clear()
    pipe = Lip2Speech.from_pretrained(model, device="cpu")
    url = pipe.push_to_hub("me/l2s-micro", token="hf_x", private=True, branch="dev")
    assert url == "https://huggingface.co/me/l2s-micro/commit/0"
    (api,) = _RecordingApi.instances
    assert api.token == "hf_x"
    assert api.calls[0] == ("create_repo", "me/l2s-micro", True, True)
    assert api.calls[1] == ("create_branch", "me/l2s-micro", "dev")
    kind, repo, branch, message, files = api.calls[2]
    assert (kind, repo, branch, message) == ("upload_folder", "me/l2s-micro", "dev", "Upload l2s pipeline")
    expected = sorted(str(p.relative_to(model)) for p in model.rglob("*") if p.is_file()) + ["README.md"]
    assert files == sorted(expected)


def test_push_refused_is_one_line(model, monkeypatch):
    import huggingface_hub
    from huggingface_hub.utils import RepositoryNotFoundError

    class NoWrite(_RecordingApi):
        def create_repo(self, *args, **kwargs):
            response = SimpleNamespace(status_code=403, headers={}, request=None)
            raise RepositoryNotFoundError("403 Forbidden", response=response)

    monkeypatch.setattr(huggingface_hub, "HfApi", NoWrite)
    result = CliRunner().invoke(main, ["pipeline", "push", str(model), "someone/theirs"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("l2s: error: someone/theirs: no such model repo") and "upload" in line


def test_model_card_metadata_and_results(model, tmp_path):
    from huggingface_hub import ModelCard

    report = tmp_path / "eval" / "report.json"
    report.parent.mkdir()
    report.write_text(json.dumps({
        "command": "l2s evaluate --ref r --hyp h --out eval", "num_utterances": 4,
        "options": {"asr": "whisper:tiny.en", "protocol": "synthgrid-test-unseen"},
        "aggregates": {"wer": {"value": 0.25}, "stoi": {"value": 0.7}, "pesq_wb": {"value": None}}}))
    card_yaml = tmp_path / "card.yaml"
    card_yaml.write_text(yaml.safe_dump({"summary": "A test pipeline.", "results": [
        {"metric": "rtf", "name": "real-time factor", "value": 0.1, "dataset": "SynthGRID", "command": "l2s bench"}]}))
    result = CliRunner().invoke(main, ["pipeline", "card", str(model), "--card", str(card_yaml),
                                       "--eval-report", str(report.parent)])
    assert result.exit_code == 0, result.output
    card = ModelCard.load(model / "README.md")
    assert card.data.library_name == "l2s" and card.data.license == "apache-2.0"
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == {"rtf", "wer", "stoi"}  # the missing PESQ is left out
    assert results["wer"].metric_value == pytest.approx(25.0) and results["wer"].dataset_name == "synthgrid-test-unseen"
    assert "`l2s evaluate --ref r --hyp h --out eval`" in card.text and "A test pipeline." in card.text
    bad = tmp_path / "bad.yaml"
    bad.write_text("results: [{metric: wer}]\n")
    result = CliRunner().invoke(main, ["pipeline", "card", str(model), "--card", str(bad)])
    assert result.exit_code == 2 and "needs metric, value, name, dataset" in result.stderr


def test_bundled_pipeline_ships_its_card():
    from huggingface_hub import ModelCard

    from l2s.hub import DEFAULT_PIPELINE, bundled_dir

    folder = bundled_dir(DEFAULT_PIPELINE)
    if folder is None:
        pytest.skip("no bundled pipeline in this build")
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "l2s" and card.data.license == "apache-2.0"
    assert card.data.datasets == ["synthgrid"] and card.data.eval_results
    assert all(r.metric_value is not None for r in card.data.eval_results)
    assert "ablation.py" in card.text and "l2s evaluate" in card.text  # the commands that measured it


def test_repo_ids_and_paths_are_told_apart():
    from l2s.hub import is_repo_id

    assert is_repo_id("someone/model") and not is_repo_id("./model") and not is_repo_id("a/b/c")
    assert not is_repo_id("/abs") and not is_repo_id("~/x") and not is_repo_id("a/")


def test_evaluation_report_records_its_command():
    from l2s.evaluation.report import to_json
    from l2s.evaluation.runner import EvalOptions, EvalReport

    report = EvalReport(options=EvalOptions(metrics=("stoi",)), utterances=[], aggregates={}, calibration={},
                        warnings=[], timings_s={}, generation={})
    assert to_json(report, "l2s evaluate --ref a")["command"] == "l2s evaluate --ref a"
    assert "command" not in to_json(report)
