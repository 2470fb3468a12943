"""Chunks in batches on a GPU: the lip reader, the prior and the mel generator run once for several chunks.

One chunk at a time leaves a GPU mostly idle (a 10 s chunk is a small batch of work); a long
input's chunks are independent until their audio is crossfaded, so they can share each network
call. Chunks are taken in order, ``batch`` at a time. Chunks cut where the mouth is still differ in
length by a few frames; the shorter ones of a batch are given the extra frames of real video that
follow (or, at the clip's end, precede) them, and their outputs are trimmed back to the chunk, so
the audio assembly sees the same chunks as one by one, each with a little more context.

Each chunk keeps its own random draws (the sampler's noise and the prior's noise excitation come
from per-item generators seeded ``seed + index``, as one by one), so a batch of chunks of equal
length gives what its chunks give alone, up to float rounding (tested on CPU).

Batches are used where they pay and give the same result: :func:`chunk_batch_size` is
:attr:`CUDA_BATCH` on CUDA and 1 (one by one) elsewhere, unless the pipeline's ``chunk_batch``
attribute says otherwise; and only with a generator that declares ``batches`` (its ``sample`` takes
the :class:`~l2s.models.generator.base.GeneratorInputs` of several clips and draws each item's noise
from the noise source; l2s's denoiser does, LipVoicer's MelGen is built for one clip) and without
the guide's gradient, whose scaling couples the items of a batch (as in LipVoicer, where a batch
holds one clip). Other generators take the one-by-one path.
"""

from __future__ import annotations

from typing import Any, Iterator, List, Optional, Sequence

import numpy as np
import torch

from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME, SAMPLES_PER_VIDEO_FRAME
from l2s.diffusion.guidance import Guidance
from l2s.diffusion.sampler import GaussianNoise
from l2s.models.generator.base import GeneratorInputs
from l2s.pipeline.chunking import Chunk, ChunkOutput
from l2s.pipeline.inputs import ClipInput
from l2s.pipeline.words import greedy_word_spans

#: What these functions take as ``pipe``: a :class:`~l2s.pipeline.pipeline.Lip2Speech` (not imported here: the
#: pipeline imports this module).
Pipeline = Any

#: Chunks per batch on CUDA (ten 10 s chunks of the bundled networks take well under 1 GB).
CUDA_BATCH = 8


def chunk_batch_size(pipe: Pipeline, guidance: Guidance, num_chunks: int) -> int:
    """How many chunks to run together (1: one by one)."""
    wanted = getattr(pipe, "chunk_batch", None)
    if wanted is None:
        wanted = CUDA_BATCH if pipe.device.type == "cuda" else 1
    guided = pipe.guide is not None and guidance.w_asr > 0
    batches = getattr(pipe.generator, "batches", False)  # a generator that does not say cannot
    if wanted <= 1 or num_chunks <= 1 or guided or not batches or pipe.vsr is None:
        return 1
    return min(int(wanted), num_chunks)


def even_spans(chunks: Sequence[Chunk], num_frames: int) -> List[Chunk]:
    """The chunks widened to the longest one's length with real frames (after them, or before at the end).

    Cores are unchanged, so trimming a widened chunk's output back to its chunk gives that chunk's output.
    """
    length = max(c.num_frames for c in chunks)
    out = []
    for c in chunks:
        end = min(c.start + length, num_frames)
        start = max(end - length, 0)
        out.append(Chunk(start=start, end=end, core_start=c.core_start, core_end=c.core_end))
    return out


class StackedNoise:
    """A batch's noise source that draws each item's noise from that item's own source (a seed per chunk)."""

    def __init__(self, sources: Sequence[GaussianNoise]):
        self.sources = list(sources)

    def initial(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        return torch.cat([s.initial((1, *shape[1:]), like) for s in self.sources])

    def step(self, k: int, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        return torch.cat([s.step(k, (1, *shape[1:]), like) for s in self.sources])


def _generators(seeds: Sequence[Optional[int]], device: torch.device) -> List[torch.Generator]:
    out = []
    for seed in seeds:
        gen = torch.Generator(device=device)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(seed)
        out.append(gen)
    return out


def batched_chunk_outputs(pipe: Pipeline, clip: ClipInput, chunks: List[Chunk], texts: List[Optional[str]],
                          speaker: Optional[torch.Tensor], ref_level: Optional[float], settings: Any,
                          guidance: Guidance, seed: Optional[int], batch: int) -> Iterator[ChunkOutput]:
    """The chunks' outputs in order, computed ``batch`` chunks at a time (see the module docstring).

    ``settings`` are the generator's sampler settings, ``guidance`` the weights (no guide's loss: a batch is
    never steered toward a text, see :func:`chunk_batch_size`).
    """
    generator = pipe.generator.with_settings(settings)
    per = MEL_FRAMES_PER_VIDEO_FRAME
    for first in range(0, len(chunks), batch):
        group = chunks[first:first + batch]
        spans = even_spans(group, clip.num_frames)
        indices = range(first, first + len(group))
        seeds = [None if seed is None else seed + i for i in indices]
        roi = torch.as_tensor(np.stack([clip.roi[s.start:s.end] for s in spans]))
        with pipe._timed("vsr"), torch.no_grad():
            features = pipe.vsr.encode(roi.to(pipe.device))
            beam = pipe.vsr.beam_options(pipe.spec.vsr_beam_size)
            readings = [pipe.vsr.decode_features(features[k], beam) if texts[i] is None else None
                        for k, i in enumerate(indices)]
        size = len(group)
        spk = None if speaker is None else speaker.to(pipe.device).expand(size, -1)
        prior = None
        if pipe.prior_model is not None:
            with pipe._timed("prior"), torch.no_grad():
                level = None if ref_level is None else torch.full((size,), float(ref_level), device=pipe.device)
                prior = pipe.prior_model(features, speaker=spk if pipe._prior_embeds else None,
                                         generator=_generators(seeds, pipe.device), ref_log_f0=level)
        inputs = GeneratorInputs(roi=roi, features=features, prior_mel=None if prior is None else prior.mel_norm,
                                 speaker=spk)
        with pipe._timed("generator"):
            sample = generator.sample(inputs, guidance, None, StackedNoise([GaussianNoise(s) for s in seeds]))
        mels = sample.mel.float().cpu().numpy()
        f0s = None if prior is None else prior.f0.float().cpu().numpy()
        prior_mels = None if prior is None else prior.mel_norm.float().cpu().numpy()
        for k, (chunk, span, i) in enumerate(zip(group, spans, indices)):
            wav = pipe.vocode(sample.mel[k])
            a, b = chunk.start - span.start, chunk.end - span.start  # the chunk within its widened span
            reading = readings[k]
            text = texts[i] if reading is None else reading.text
            alignment = pipe.align(features[k:k + 1], text)  # on the widened span's timeline
            words = ()
            if reading is not None and beam is None and pipe.vsr.tokenizer is not None:
                with torch.no_grad():  # as read_lips gives them, in seconds from the chunk's first frame
                    words = greedy_word_spans(pipe.vsr.ctc(features[k:k + 1])[0], pipe.vsr.tokenizer,
                                              offset_frames=-a)
            yield ChunkOutput(chunk=chunk, text=text,
                              confidences=() if reading is None else tuple(float(c) for c in reading.confidences),
                              mel=np.ascontiguousarray(mels[k][:, a * per:b * per]),
                              f0=None if f0s is None else np.ascontiguousarray(f0s[k][a * per:b * per]),
                              wav=wav[a * SAMPLES_PER_VIDEO_FRAME:b * SAMPLES_PER_VIDEO_FRAME],
                              network_evals=sample.network_evals, timesteps=sample.timesteps,
                              prior_mel=None if prior_mels is None else np.ascontiguousarray(
                                  prior_mels[k][:, a * per:b * per]),
                              words=words, alignment=alignment, alignment_start=span.start)
        del sample, prior, features, roi
