"""A pipeline converted from the small LipVoicer fixture checkpoints, optionally on the recorded run's schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml

from l2s.hub import CONFIG_FILE
from l2s.pipeline.lipvoicer import LipVoicerSources, write_pipeline


def converted_pipeline(fx: Path, out: Path, num_steps: Optional[int] = None) -> Path:
    """``write_pipeline`` of the fixture checkpoints into ``out``; with ``num_steps`` the generator and the guide
    say they were trained on a linear schedule of that many steps (the recorded sampler run uses 10)."""
    write_pipeline(LipVoicerSources(melgen=fx / "melgen.small.safetensors", asr=fx / "asr.small.safetensors",
                                    vocoder=fx / "hifigan.small.safetensors",
                                    vocoder_config=fx / "hifigan.small.config.json"), out)
    if num_steps is not None:
        for component in ("generator", "guide"):
            path = out / component / CONFIG_FILE
            meta = yaml.safe_load(path.read_text())
            meta["config"]["schedule"]["num_steps"] = num_steps
            path.write_text(yaml.safe_dump(meta, sort_keys=False))
    return out
