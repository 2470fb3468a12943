import pytest

from l2s import config
from l2s.config import CONTRACT, SignalContract, exact_div
from l2s.structs import from_dict


def test_derived_constants():
    assert config.SAMPLES_PER_VIDEO_FRAME == 640
    assert config.MEL_FRAMES_PER_VIDEO_FRAME == 4
    assert config.MEL_FRAME_RATE == 100
    assert config.F0_FRAME_RATE == 100
    assert CONTRACT.mel.norm_scale == pytest.approx(5.756463, abs=1e-6)


def test_contract_roundtrip_and_frozen():
    assert from_dict(SignalContract, CONTRACT.to_dict()) == CONTRACT
    with pytest.raises(Exception):
        CONTRACT.audio.sample_rate = 22050  # frozen


def test_exact_div_refuses_remainder():
    with pytest.raises(ValueError):
        exact_div(16000, 24)
