from dataclasses import dataclass

import pytest
import torch
import yaml

from l2s.errors import ContractError, ModelError
from l2s.hub import CONFIG_FILE, load_model_dir, resolve, save_model_dir


@dataclass(frozen=True)
class Toy:
    width: int = 3


def test_save_load_roundtrip(tmp_path):
    sd = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2)}
    out = save_model_dir(tmp_path / "m", "toy", "toy-arch", Toy(), sd)
    md = load_model_dir(out, kind="toy")
    assert md.config == {"width": 3} and md.arch == "toy-arch" and torch.equal(md.state_dict["w"], sd["w"])
    assert yaml.safe_load((out / CONFIG_FILE).read_text())["format_version"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left
    with pytest.raises(ModelError, match="expected 'vsr'"):
        load_model_dir(out, kind="vsr")


def test_contract_mismatch_is_refused(tmp_path):
    out = save_model_dir(tmp_path / "m", "toy", "toy-arch", Toy(), {"w": torch.ones(1)})
    meta = yaml.safe_load((out / CONFIG_FILE).read_text())
    meta["contract"]["audio"]["sample_rate"] = 22050
    (out / CONFIG_FILE).write_text(yaml.safe_dump(meta))
    with pytest.raises(ContractError, match="audio.sample_rate: 22050"):
        load_model_dir(out)


def test_resolve(tmp_path, monkeypatch):
    assert resolve(tmp_path) == tmp_path
    with pytest.raises(ModelError, match="no such model"):
        resolve("definitely-not-a-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError, match="offline"):
        resolve("someone/some-l2s-model")


def test_load_model_rebuilds_through_the_table_and_refuses_misfits(tmp_path):
    from l2s.arch import load_model, lookup, save_model

    prior = lookup("prior", "ddsp").create("micro")
    back = load_model(save_model(prior, tmp_path / "m"), "prior")
    assert back.config == prior.config and not back.training
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), prior.state_dict().values()))
    save_model_dir(tmp_path / "bad", "prior", "ddsp", prior.config, {"w": torch.ones(1)})
    with pytest.raises(ModelError, match="not a loadable prior checkpoint"):
        load_model(tmp_path / "bad", "prior")
    save_model_dir(tmp_path / "other", "prior", "wavenet", prior.config, prior.state_dict())
    with pytest.raises(ModelError, match="unknown prior architecture 'wavenet'"):
        load_model(tmp_path / "other", "prior")
    with pytest.raises(ModelError, match="holds a 'prior' model, expected 'generator'"):
        load_model(tmp_path / "m", "generator")
