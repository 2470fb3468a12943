"""LipVoicer's ASR guide as a member of the ``guide`` family (the ``lipvoicer`` architecture).

The network is :class:`~l2s.models.lipvoicer.asr.ASRGuide`, a step-conditioned Efficient Conformer with a CTC
head over SentencePiece BPE tokens (its ``tokenizer.model`` travels in the model directory) or, for small
guides of the same architecture, over the character tokenizer.
"""

from __future__ import annotations

from typing import Optional

import torch

from l2s.arch import Architecture
from l2s.models.guide.base import TokenGuide
from l2s.models.lipvoicer.asr import ASR_GUIDE_PRESETS, ASRGuide, ASRGuideConfig

#: the SentencePiece model of a converted LipVoicer guide, inside its model directory
TOKENIZER_FILE = "tokenizer.model"


def _stage(model: ASRGuide, tokenizer=None, schedule=None) -> Optional[TokenGuide]:
    """The pipeline's guide: LipVoicer's CTC loss toward a text's tokens (None without a tokenizer)."""
    if tokenizer is None:
        return None

    def token_loss(tokens: torch.Tensor, frames: int):
        lengths = torch.tensor([frames], device=tokens.device)
        return lambda x, t: model.ctc_loss(x, lengths, t, tokens)

    return TokenGuide("lipvoicer", model, tokenizer, token_loss, model.config.schedule)


ARCHITECTURE = Architecture(family="guide", name="lipvoicer", model_cls=ASRGuide, config_cls=ASRGuideConfig,
                            presets=ASR_GUIDE_PRESETS, stage=_stage,
                            description="LipVoicer's step-conditioned Efficient Conformer CTC guide")
