"""The guide seam: a network that scores a text on the noisy mel, as the loss whose gradient steers a generator.

The pipeline asks its guide for :meth:`Guide.loss_fn` of the text and the clip's length and hands that
``LossFn`` to the generator. :class:`TokenGuide` serves the guides that read token ids through a tokenizer
named in ``pipeline.yaml`` (``char``, or a SentencePiece file inside the pipeline directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, Protocol, Union

import torch

from l2s.diffusion.sampler import LossFn
from l2s.diffusion.schedules import NoiseScheduleConfig

#: ``pipeline.yaml``'s name of :class:`~l2s.text.tokenizer.CharTokenizer` as the guide's tokenizer.
CHAR_TOKENIZER = "char"

#: ``(tokens (1, S), mel frames) -> the sampler's loss toward them``.
TokenLoss = Callable[[torch.Tensor, int], LossFn]


class Guide(Protocol):
    """The guide stage of a pipeline.

    Attributes:
        arch: its architecture's name.
        model: the network.
        schedule: the noise schedule of the mels it was trained on (the generator's must be the same), or None
            when it reads any.
    """

    arch: str
    model: torch.nn.Module
    schedule: Optional[NoiseScheduleConfig]

    def loss_fn(self, text: str, frames: int) -> Optional[LossFn]:
        """The sampler's ``asr_loss`` toward ``text`` for one clip of ``frames`` mel frames (None: no tokens)."""
        ...


def text_encoder(tokenizer: Union[str, Path]) -> Callable[[str], List[int]]:
    """Token ids of a text: ``"char"`` (:class:`~l2s.text.tokenizer.CharTokenizer`, blank 0) or a SentencePiece
    model file (plain ``encode`` ids, LipVoicer's convention)."""
    if str(tokenizer) == CHAR_TOKENIZER:
        from l2s.text.tokenizer import CharTokenizer

        return CharTokenizer().encode
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(tokenizer)).encode


class TokenGuide:
    """A guide network that reads token ids: the lower-cased text through its tokenizer, then ``token_loss``.

    Args:
        arch: the architecture's name.
        model: the network (its parameters' device is where the tokens go).
        tokenizer: ``"char"`` or a SentencePiece model file.
        token_loss: the loss toward token ids.
        schedule: the noise schedule it was trained on.
    """

    def __init__(self, arch: str, model: torch.nn.Module, tokenizer: Union[str, Path], token_loss: TokenLoss,
                 schedule: Optional[NoiseScheduleConfig]):
        self.arch, self.model, self.schedule = arch, model, schedule
        self._encode = text_encoder(tokenizer)
        self._token_loss = token_loss

    def tokens(self, text: str) -> Optional[torch.Tensor]:
        """``(1, S)`` ids of the lower-cased text, or None when it has none."""
        ids = [int(i) for i in self._encode(" ".join(text.lower().split()))]
        return torch.tensor([ids], dtype=torch.long) if ids else None

    def token_loss(self, tokens: torch.Tensor, frames: int) -> LossFn:
        """The sampler's ``asr_loss`` toward ``(1, S)`` token ids, for one clip of ``frames`` mel frames."""
        return self._token_loss(tokens.to(next(self.model.parameters()).device), frames)

    def loss_fn(self, text: str, frames: int) -> Optional[LossFn]:
        tokens = self.tokens(text)
        return None if tokens is None else self.token_loss(tokens, frames)
