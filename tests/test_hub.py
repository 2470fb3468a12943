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
    out = save_model_dir(tmp_path / "m", "toy", Toy(), sd)
    md = load_model_dir(out, kind="toy")
    assert md.config == {"width": 3} and torch.equal(md.state_dict["w"], sd["w"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left
    with pytest.raises(ModelError, match="expected 'vsr'"):
        load_model_dir(out, kind="vsr")


def test_contract_mismatch_is_refused(tmp_path):
    out = save_model_dir(tmp_path / "m", "toy", Toy(), {"w": torch.ones(1)})
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


def test_load_module_rebuilds_and_refuses_misfits(tmp_path):
    from l2s.hub import load_module

    lin = torch.nn.Linear(3, 2)
    save_model_dir(tmp_path / "m", "toy", {"n_in": 3, "n_out": 2}, lin.state_dict())
    back = load_module(tmp_path / "m", "toy", lambda c: torch.nn.Linear(c["n_in"], c["n_out"]))
    assert torch.equal(back.weight, lin.weight) and not back.training
    with pytest.raises(ModelError, match="not a loadable toy checkpoint"):
        load_module(tmp_path / "m", "toy", lambda c: torch.nn.Linear(4, 2))
