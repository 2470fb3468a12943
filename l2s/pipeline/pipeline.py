"""Lip2Speech: silent talking-face video in, speech out.

Stages, each callable alone::

    pipe = Lip2Speech.from_pretrained("path/to/pipeline")   # or a bundled name, or a hub repo id
    clip = pipe.roi("talk.mp4")                  # ClipInput: (T, 96, 96) uint8 mouth crops (+ a face frame)
    lips = pipe.read_lips(clip.roi)              # VSR features (1, T, D), text and token confidences
    timeline = pipe.align(lips.features, lips.text)   # Alignment: words and phonemes on the timeline
    prior = pipe.prior(lips.features)            # the coarse prior: mel (1, 80, 4T), F0 (1, 4T)
    sample = pipe.sample_mel(clip.roi, lips.features, prior.mel_norm, text=lips.text)   # the generator: (1, 80, 4T)
    wav = pipe.vocode(sample.mel)                # (4T * 160,) float32 at 16 kHz
    result = pipe("talk.mp4")                    # all of it, in chunks when long: SynthesisResult

Long inputs run chunk by chunk (:mod:`l2s.pipeline.chunking`), so memory does not grow with the
duration beyond the ROI and the output itself. Each stage's member is looked up in the architecture tables
(:mod:`l2s.arch`) from what its directory says; the generator owns its schedule and sampler settings.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from l2s.arch import load_member, load_model, load_stage, named_members, settings_of, with_options
from l2s.config import CONTRACT, FPS, MEL_FRAMES_PER_VIDEO_FRAME, N_MELS, SAMPLE_RATE
from l2s.device import resolve_device
from l2s.diffusion.guidance import Guidance
from l2s.diffusion.sampler import GaussianNoise, SampleResult
from l2s.diffusion.schedules import check_schedule
from l2s.errors import InputError, ModelError
from l2s.models.generator.base import Generator, GeneratorInputs
from l2s.models.guide.base import CHAR_TOKENIZER, Guide
from l2s.pipeline.chunking import (AudioAssembler, Chunk, ChunkOutput, core_slice, mouth_motion, plan_chunks,
                                   release_memory)
from l2s.pipeline.inputs import (ClipInput, check_roi, reference_log_f0, reference_wav, speaker_embedding,
                                 to_clip_input)
from l2s.pipeline.spec import PipelineSpec, read_spec
from l2s.pipeline.words import Span, greedy_word_spans
from l2s.structs import to_dict

#: The timed stages (``SynthesisResult.timings``), in order.
STAGES = ("roi", "vsr", "aligner", "prior", "generator", "vocoder")
SYNTHETIC_CORPORA = ("synthgrid",)


class L2SWarning(UserWarning):
    """Something the user should know about a result (the CLI prints these as one line)."""


@dataclass(frozen=True)
class LipReading:
    """The lip reader's output for one clip.

    Attributes:
        features: ``(1, T, D)`` visual features at 25 fps.
        text: the decoded text ('' when not decoded).
        confidences: per-token confidences of that text.
        words: the text's words with the frames the greedy CTC path emitted them at, in seconds from the
            first frame given (:mod:`l2s.pipeline.words`); empty for a beam-searched text.
    """

    features: torch.Tensor
    text: str = ""
    confidences: Tuple[float, ...] = ()
    words: Tuple[Span, ...] = ()


@dataclass(frozen=True)
class SynthesisResult:
    """A voiced clip.

    Attributes:
        wav: ``(T * 640,)`` float32 waveform.
        sample_rate: its rate (16 kHz).
        mel: ``(80, 4 T)`` generated mel in model space (``mel_norm``).
        text: the text the generator was steered toward (lip-read, or given), '' if none.
        confidences: per-token confidences of the lip-read text (empty for a given text).
        f0: ``(4 T,)`` F0 of the coarse prior in Hz (0 unvoiced), or None without a prior.
        timings: seconds per stage (:data:`STAGES`: ``roi``, ``vsr``, ``aligner``, ``prior``, ``generator``,
            ``vocoder``)
            and ``total``.
        settings: the generator's settings and the guidance weights used, the seed, the text source and the
            chunk count.
        chunks: ``(start, end)`` frames each chunk covered (overlap included).
        network_evals: generator plus guide evaluations, over all chunks.
        prior_mel: ``(80, 4 T)`` mel of the coarse prior in model space, or None without a prior.
        words: the lip-read words and when the lip reader saw them (seconds; empty for a given or
            beam-searched text), :mod:`l2s.pipeline.words`.
        alignment: the text on the timeline (:class:`~l2s.align.timeline.Alignment`: words, phonemes),
            or None when the pipeline has no lip reader to align with.
    """

    wav: np.ndarray
    sample_rate: int
    mel: np.ndarray
    text: str
    confidences: Tuple[float, ...]
    f0: Optional[np.ndarray]
    timings: Mapping[str, float]
    settings: Mapping[str, Any] = field(default_factory=dict)
    chunks: Tuple[Tuple[int, int], ...] = ()
    network_evals: int = 0
    prior_mel: Optional[np.ndarray] = None
    words: Tuple[Span, ...] = ()
    alignment: Optional[Any] = None

    @property
    def duration(self) -> float:
        return self.wav.shape[0] / self.sample_rate


def split_text(text: str, chunks: List[Chunk]) -> List[str]:
    """Share a given text's words among chunks in proportion to the frames each one owns."""
    words = text.split()
    total = max(1, chunks[-1].core_end)
    out, taken = [], 0
    for chunk in chunks:
        upto = round(len(words) * chunk.core_end / total)
        out.append(" ".join(words[taken:upto]))
        taken = upto
    return out


def component_source(root: Path, family: str, value: str) -> Union[str, Path]:
    """Where a pipeline's component comes from: its subdirectory, or a member of its stage's table that needs
    no directory (``griffinlim``, ``whisper``) named in ``pipeline.yaml`` when no such subdirectory exists."""
    path = root / value
    return value if value in named_members(family) and not path.exists() else path


def guide_tokenizer(spec: PipelineSpec, root: Path) -> Optional[Union[str, Path]]:
    """The guide's tokenizer: ``"char"``, the SentencePiece file ``pipeline.yaml`` names, or None.

    Raises:
        ModelError: the named file is not in the pipeline directory.
    """
    tokenizer = spec.guide_tokenizer
    if tokenizer is None or tokenizer == CHAR_TOKENIZER:
        return tokenizer
    if not (root / tokenizer).is_file():
        raise ModelError(f"{root}: guide tokenizer {tokenizer} not found")
    return root / tokenizer


def load_generator(source: Union[str, Path], settings: Mapping[str, Any], device: torch.device,
                   where: str = "generator") -> Generator:
    """The generator stage of a component: its network, wrapped by its architecture with ``settings`` (as
    ``pipeline.yaml`` stores them) parsed by that architecture's settings class."""
    model, entry = load_member(source, "generator", device)
    return entry.stage(model, settings_of(entry, settings, where))


class Lip2Speech:
    """The end-to-end pipeline (build it with :meth:`from_pretrained`).

    Raises (at construction):
        ModelError: the guide was trained on another noise schedule than the generator.
    """

    def __init__(self, spec: PipelineSpec, root: Path, generator: Generator, vocoder: Any,
                 device: torch.device, vsr: Optional[torch.nn.Module] = None,
                 prior_model: Optional[torch.nn.Module] = None, guide: Optional[Guide] = None,
                 aligner: Optional[Any] = None):
        self.spec, self.root, self.device = spec, root, device
        self.generator, self.vocoder = generator, vocoder
        self.vsr, self.prior_model, self.guide = vsr, prior_model, guide
        #: places the text on the timeline (:class:`~l2s.align.aligner.Aligner`), or None
        self.aligner = aligner
        if guide is not None:
            check_schedule(guide.schedule, generator.schedule, str(root))
        self._timings: Optional[Dict[str, float]] = None

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, name_or_path: Union[str, Path], device: Union[str, torch.device] = "auto", *,
                        revision: Optional[str] = None, cache_dir: Optional[Union[str, Path]] = None,
                        local_files_only: bool = False, token: Optional[Union[str, bool]] = None) -> "Lip2Speech":
        """Load a pipeline directory: a local path, a bundled name or a hub repo id.

        Args:
            name_or_path: the directory, the bundled name (``synthgrid-small``) or a Hugging Face repo id.
            device: ``auto``, ``cpu`` or ``cuda[:n]``.
            revision: a hub repo's branch, tag or commit hash (default: main).
            cache_dir: the Hugging Face cache to download into and read from.
            local_files_only: never use the network (also set by ``HF_HUB_OFFLINE=1``).
            token: access token for a private or gated repo (default: ``HF_TOKEN`` or the saved login).

        Raises:
            ModelError: not a pipeline, a component is missing or does not load, the guide and the generator
                were trained on different noise schedules, or the hub repo cannot be fetched (the message says
                why: offline and not cached, no network, no such repo...).
            ContractError: a component was trained with another signal contract.
        """
        from l2s.hub import HubOptions, resolve
        from l2s.vocoder import get_vocoder

        root = resolve(name_or_path, HubOptions(revision=revision, cache_dir=cache_dir,
                                                local_files_only=local_files_only, token=token))
        spec = read_spec(root)
        dev = resolve_device(device)
        source = {c: component_source(root, c, v) for c, v in spec.components.items()}
        vsr = load_model(source["vsr"], "vsr", dev) if "vsr" in source else None
        prior = load_model(source["prior"], "prior", dev) if "prior" in source else None
        generator = load_generator(source["generator"], spec.generator, dev, f"{root}: generator")
        guide = None
        if "guide" in source:
            guide = load_stage(source["guide"], "guide", dev, tokenizer=guide_tokenizer(spec, root),
                               schedule=generator.schedule)
        vocoder = get_vocoder(source["vocoder"], dev)
        aligner = None
        if vsr is not None and vsr.tokenizer is not None:  # without an aligner model: on the reader's CTC head
            from l2s.align import Aligner

            aligner = Aligner(vsr, load_model(source["aligner"], "aligner", dev) if "aligner" in source else None)
        return cls(spec, root, generator, vocoder, dev, vsr=vsr, prior_model=prior, guide=guide, aligner=aligner)

    def save_pretrained(self, save_directory: Union[str, Path]) -> Path:
        """Write this pipeline as a directory that :meth:`from_pretrained` loads: ``pipeline.yaml`` (from
        :attr:`spec`), the component directories as they were loaded, and the model card ``README.md``.

        Changes made to the loaded modules in memory are not saved (the component files are copied).

        Raises:
            InputError: ``save_directory`` is a file or a non-empty folder that is not a pipeline directory.
        """
        from l2s.pipeline.save import save_pipeline

        return save_pipeline(self.root, self.spec, save_directory)

    def push_to_hub(self, repo_id: str, *, token: Optional[Union[str, bool]] = None, private: Optional[bool] = None,
                    branch: Optional[str] = None, create_pr: bool = False,
                    commit_message: str = "Upload l2s pipeline") -> str:
        """Upload what :meth:`save_pretrained` writes to the model repo ``repo_id`` (created if needed),
        through ``huggingface_hub.HfApi``; returns the commit URL.

        Raises:
            ModelError: the Hub refused (no write access, gated...) or could not be reached.
        """
        from l2s.pipeline.save import push_pipeline

        return push_pipeline(self.root, self.spec, repo_id, token=token, private=private, branch=branch,
                             create_pr=create_pr, commit_message=commit_message)

    @property
    def model_id(self) -> str:
        return self.spec.name

    @property
    def takes_speaker(self) -> bool:
        """Whether a reference voice can change the output: a speaker-conditioned prior or generator takes its
        embedding, an F0 prior without one its pitch level."""
        return bool(self.prior_model is not None or self.generator.takes_speaker)

    def describe(self) -> Dict[str, Any]:
        """Model ids for sidecars and benches."""
        return {"name": self.spec.name, "path": str(self.root), "weights": self.spec.weights,
                "trained_on": self.spec.trained_on, "generator_arch": self.generator.arch,
                "components": dict(self.spec.components)}

    def networks(self) -> Dict[str, torch.nn.Module]:
        """The loaded networks, by component (stages the pipeline lacks are left out)."""
        found = {"vsr": self.vsr, "aligner": None if self.aligner is None else self.aligner.model,
                 "prior": self.prior_model, "generator": self.generator.model,
                 "guide": None if self.guide is None else self.guide.model, "vocoder": self.vocoder}
        return {k: v for k, v in found.items() if isinstance(v, torch.nn.Module)}

    # ------------------------------------------------------------------ stages

    @contextlib.contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            if self._timings is not None:
                self._timings[stage] = self._timings.get(stage, 0.0) + time.perf_counter() - start

    def roi(self, video: Any, sidecar: Optional[Union[str, Path]] = None) -> ClipInput:
        """Mouth crops of a video file, RGB frames or an ROI (see :func:`~l2s.pipeline.inputs.to_clip_input`)."""
        with self._timed("roi"):
            return to_clip_input(video, sidecar)

    def read_lips(self, roi: Union[np.ndarray, torch.Tensor], decode: bool = True) -> LipReading:
        """VSR features ``(1, T, D)`` of ``(T, 96, 96)`` uint8 crops, and the text read from them.

        Raises:
            InputError: the pipeline has no lip reader.
        """
        if self.vsr is None:
            raise InputError(f"{self.model_id} has no lip reader (vsr): give the text")
        roi_t = torch.as_tensor(check_roi(np.asarray(roi))).unsqueeze(0).to(self.device)
        with self._timed("vsr"), torch.no_grad():
            features = self.vsr.encode(roi_t)
            if not decode:
                return LipReading(features)
            beam = self.vsr.beam_options(self.spec.vsr_beam_size)
            reading = self.vsr.decode_features(features[0], beam)
            words: Tuple[Span, ...] = ()
            if beam is None and self.vsr.tokenizer is not None:  # the greedy path is the text's own
                words = greedy_word_spans(self.vsr.ctc(features)[0], self.vsr.tokenizer)
        return LipReading(features, reading.text, tuple(float(c) for c in reading.confidences), words)

    def align(self, features: torch.Tensor, text: str):
        """The text on the timeline of one clip (:class:`~l2s.align.timeline.Alignment`), or None without an
        aligner.

        Args:
            features: ``(1, T, D)`` VSR features.
            text: the words (lip-read or given); '' gives an alignment without words.
        """
        if self.aligner is None:
            return None
        with self._timed("aligner"):
            try:
                return self.aligner.align(features[0].to(self.device), text, allow_empty=True)
            except InputError as exc:  # a given text longer than the frames allow: voiced, but not on the timeline
                warnings.warn(f"the text is not placed on the timeline: {exc}", L2SWarning, stacklevel=2)
                return None

    def prior(self, features: torch.Tensor, speaker: Optional[torch.Tensor] = None, seed: Optional[int] = None,
              ref_log_f0: Optional[float] = None):
        """The F0 + DDSP coarse prior (:class:`~l2s.models.prior.ddsp.PriorOutput`), or None without one.

        Args:
            features: ``(1, T, D)`` VSR features.
            speaker: ``(1, E)`` speaker embedding, or None.
            seed: seed of the noise excitation.
            ref_log_f0: pitch level of a reference recording (mean voiced log-F0): the predicted F0 is
                shifted to it; None leaves the predicted level.
        """
        if self.prior_model is None:
            return None
        gen = torch.Generator(device=self.device)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(seed)
        with self._timed("prior"), torch.no_grad():
            spk = speaker.to(self.device) if speaker is not None and self._prior_embeds else None
            level = None if ref_log_f0 is None else torch.tensor([float(ref_log_f0)], device=self.device)
            return self.prior_model(features.to(self.device), speaker=spk, generator=gen, ref_log_f0=level)

    def generator_settings(self, steps: Optional[int] = None, solver: Optional[str] = None,
                           start_step: Optional[int] = None) -> Any:
        """The generator's settings from ``pipeline.yaml`` with the given options (None: keep).

        For a diffusion generator ``start_step`` overrides the shallow-diffusion start; ``0`` means none
        (start from pure noise).

        Raises:
            InputError: an option the generator does not have (a flow generator has no ``solver``, say).
        """
        options = {"steps": steps, "solver": solver, "start_step": start_step}
        return with_options(self.generator.settings, options, f"the {self.generator.arch} generator")

    def guidance(self, w_video: Optional[float] = None, w_asr: Optional[float] = None) -> Guidance:
        """The pipeline's guidance weights with the given overrides."""
        changes = {k: v for k, v in (("w_video", w_video), ("w_asr", w_asr)) if v is not None}
        return replace(self.spec.guidance, **changes)

    def sample_mel(self, roi: Union[np.ndarray, torch.Tensor], features: Optional[torch.Tensor] = None,
                   prior_mel: Optional[torch.Tensor] = None, text: Optional[str] = None,
                   face: Optional[np.ndarray] = None, speaker: Optional[torch.Tensor] = None,
                   settings: Any = None, guidance: Optional[Guidance] = None,
                   seed: Optional[int] = None, prior_f0: Optional[torch.Tensor] = None,
                   prior_voiced: Optional[torch.Tensor] = None, alignment: Any = None) -> SampleResult:
        """Sample the mel of one clip with the generator.

        Args:
            roi: ``(T, 96, 96)`` uint8 crops.
            features: ``(1, T, D)`` VSR features (needed by a generator that reads them).
            prior_mel: ``(1, 80, 4 T)`` coarse prior mel in model space (shallow diffusion, conditioning).
            text: text to steer toward with the guide ('' or None: no guidance toward a text).
            face: ``(H, W, 3)`` uint8 RGB face frame (LipVoicer), or None.
            speaker: ``(1, E)`` speaker embedding, or None.
            settings: the generator's settings (default: the pipeline's; see :meth:`generator_settings`).
            guidance: the guidance weights (default: the pipeline's; see :meth:`guidance`).
            seed: seed of the generator's noise.
            prior_f0: ``(1, 4 T)`` the prior's F0 in Hz (a generator that reads it: ``content-flow``).
            prior_voiced: ``(1, 4 T)`` the prior's voicing.
            alignment: the text on the clip's timeline (:meth:`align`), for a generator that reads it.

        Returns:
            The sample (``mel`` is ``(1, 80, 4 T)`` in model space) and its network-evaluation counts.
        """
        generator = self.generator if settings is None else self.generator.with_settings(settings)
        guidance = self.spec.guidance if guidance is None else guidance
        roi_t = torch.as_tensor(check_roi(np.asarray(roi))).unsqueeze(0)
        face_t = None if face is None else torch.as_tensor(np.ascontiguousarray(face)).unsqueeze(0)
        inputs = GeneratorInputs(roi=roi_t, features=features, prior_mel=prior_mel, face=face_t, speaker=speaker,
                                 f0=prior_f0, voiced=prior_voiced, alignment=alignment)
        frames = roi_t.shape[1] * MEL_FRAMES_PER_VIDEO_FRAME
        asr_loss = self.guide.loss_fn(text, frames) if (self.guide is not None and text) else None
        with self._timed("generator"):
            return generator.sample(inputs, guidance, asr_loss, GaussianNoise(seed))

    def vocode(self, mel: torch.Tensor) -> np.ndarray:
        """``(1, 80, T_m)`` or ``(80, T_m)`` model-space mel -> ``(T_m * 160,)`` float32 waveform."""
        from l2s.vocoder import MEL_NORM, render

        mel = mel if mel.dim() == 3 else mel.unsqueeze(0)
        with self._timed("vocoder"), torch.no_grad():
            wav = render(self.vocoder, mel.to(self.device), MEL_NORM)
        return wav[0].float().cpu().numpy()

    # ------------------------------------------------------------------ end to end

    def __call__(self, video: Any, text: Optional[str] = None, ref_audio: Any = None, steps: Optional[int] = None,
                 w_asr: Optional[float] = None, w_video: Optional[float] = None, seed: Optional[int] = None,
                 solver: Optional[str] = None, sidecar: Optional[Union[str, Path]] = None,
                 on_chunk: Optional[Callable[[int, int], None]] = None,
                 start_step: Optional[int] = None) -> SynthesisResult:
        """Voice a clip.

        Args:
            video: a video path, ``(T, H, W, 3)`` RGB frames, ``(T, 96, 96)`` mouth crops, or a ClipInput.
            text: steer toward this text instead of the lip-read one.
            ref_audio: a recording (path or 16 kHz samples) whose voice to use, if the model takes one.
            steps, solver, start_step: options of the generator's settings (default: ``pipeline.yaml``;
                :meth:`generator_settings`); a diffusion generator's ``start_step`` 0 samples from pure noise.
            w_asr, w_video: guidance weights (default: ``pipeline.yaml``).
            seed: makes the result reproducible.
            sidecar: landmark file instead of face detection.
            on_chunk: called with ``(done, total)`` after each chunk (progress bars).

        Returns:
            A :class:`SynthesisResult` with ``T * 640`` samples.
        """
        self._timings = {stage: 0.0 for stage in STAGES}
        start = time.perf_counter()
        try:
            clip = self.roi(video, sidecar)
            settings = self.generator_settings(steps, solver, start_step)
            guidance = self.guidance(w_video, w_asr)
            self._warn_domain(clip)
            speaker, ref_level = self._reference(ref_audio)
            chunks = plan_chunks(clip.num_frames, self.spec.chunking, mouth_motion(clip.roi)
                                 if clip.num_frames > self.spec.chunking.max_frames else None)
            texts = split_text(text, chunks) if text else [None] * len(chunks)
            if not text and self.vsr is None and self.guide is not None and guidance.w_asr > 0:
                warnings.warn(f"{self.model_id} has no lip reader and no --text was given: no ASR guidance",
                              L2SWarning, stacklevel=2)
            reads_text = self.generator.needs_alignment and self.aligner is not None
            if text and self.guide is None and not reads_text:
                warnings.warn(f"{self.model_id} has no guide ASR with a tokenizer: the text cannot steer the "
                              "speech, it only labels the output", L2SWarning, stacklevel=2)
            elif text and guidance.w_asr == 0 and not reads_text:
                warnings.warn("ASR guidance is off (w_asr 0): the text only labels the output; give --w-asr to "
                              "steer the speech toward it", L2SWarning, stacklevel=2)
            result = self._run_chunks(clip, chunks, texts, speaker, ref_level, settings, guidance, seed, on_chunk)
        finally:
            timings, self._timings = self._timings, None
        timings["total"] = time.perf_counter() - start
        used = {**(to_dict(settings) if settings is not None else {}), "steps": len(result["timesteps"]),
                **asdict(guidance),
                "seed": seed, "text_source": "given" if text else ("vsr" if self.vsr is not None else "none"),
                "speaker": "ref_audio" if speaker is not None or ref_level is not None else None,
                "chunks": len(chunks),
                "ref_log_f0": ref_level,
                "device": str(self.device)}
        return SynthesisResult(wav=result["wav"], sample_rate=SAMPLE_RATE, mel=result["mel"],
                               text=" ".join(t for t in result["texts"] if t), confidences=result["confidences"],
                               f0=result["f0"], timings=timings, settings=used,
                               chunks=tuple((c.start, c.end) for c in chunks), network_evals=result["evals"],
                               prior_mel=result["prior_mel"], words=result["words"], alignment=result["alignment"])

    def _warn_domain(self, clip: ClipInput) -> None:
        if clip.detected and self.spec.trained_on in SYNTHETIC_CORPORA:
            warnings.warn(f"{self.model_id} was trained on synthetic faces ({self.spec.trained_on}); on a "
                          "real-world video expect unintelligible speech. Load real checkpoints with --model "
                          "(e.g. a LipVoicer pipeline made by `l2s convert lipvoicer`)", L2SWarning, stacklevel=3)

    @property
    def _prior_embeds(self) -> bool:
        """Whether the F0 prior reads a speaker embedding (else a reference sets only its pitch level)."""
        return self.prior_model is not None and self.prior_model.config.f0.speaker_dim > 0

    def _reference(self, ref_audio: Any) -> Tuple[Optional[torch.Tensor], Optional[float]]:
        """What a reference recording gives this pipeline, read once: ``(speaker embedding, pitch level)``.

        The embedding goes to a speaker-conditioned prior or generator; the pitch level to a prior that reads
        no embedding (one that does learned the level from it: on SynthGRID test-unseen the shift on top
        raised its F0 RMSE from 25.6 to 27.6 Hz).
        """
        if ref_audio is None:
            return None, None
        if not self.takes_speaker:
            warnings.warn(f"{self.model_id} takes no reference voice: --ref-audio is ignored", L2SWarning,
                          stacklevel=3)
            return None, None
        wav = reference_wav(ref_audio)
        embeds = self._prior_embeds or self.generator.takes_speaker
        speaker = speaker_embedding(wav).to(self.device) if embeds else None
        level = reference_log_f0(wav) if self.prior_model is not None and not self._prior_embeds else None
        return speaker, level

    def _run_chunks(self, clip: ClipInput, chunks: List[Chunk], texts: List[Optional[str]],
                    speaker: Optional[torch.Tensor], ref_level: Optional[float], settings: Any, guidance: Guidance,
                    seed: Optional[int],
                    on_chunk: Optional[Callable[[int, int], None]]) -> Dict[str, Any]:
        from l2s.pipeline.batched import batched_chunk_outputs, chunk_batch_size

        per = MEL_FRAMES_PER_VIDEO_FRAME
        audio = AudioAssembler(clip.num_frames)
        mel = np.zeros((N_MELS, clip.num_frames * per), dtype=np.float32)
        f0 = np.zeros(clip.num_frames * per, dtype=np.float32) if self.prior_model is not None else None
        prior_mel = np.zeros_like(mel) if self.prior_model is not None else None
        words: List[Span] = []
        out_texts: List[str] = []
        confidences: List[float] = []
        evals = 0
        timesteps: Tuple[int, ...] = ()
        timelines: List[Tuple[Any, float, float, float]] = []
        batch = chunk_batch_size(self, guidance, len(chunks))
        if batch > 1:
            outputs = batched_chunk_outputs(self, clip, chunks, texts, speaker, ref_level, settings, guidance, seed,
                                            batch)
        else:
            outputs = self._chunk_outputs(clip, chunks, texts, speaker, ref_level, settings, guidance, seed)
        for index, out in enumerate(outputs):
            chunk = out.chunk
            if out.alignment is not None:
                timelines.append((out.alignment, out.alignment_start / FPS, chunk.core_start / FPS,
                                  chunk.core_end / FPS))
            audio.add(chunk, out.wav)
            own, whole = core_slice(chunk, per)
            mel[:, whole] = out.mel[:, own]
            if f0 is not None and out.f0 is not None:
                f0[whole] = out.f0[own]
                prior_mel[:, whole] = out.prior_mel[:, own]
            out_texts.append(out.text)
            confidences.extend(out.confidences)
            words.extend(_core_words(out.words, chunk))
            evals += out.network_evals
            timesteps = out.timesteps
            del out
            if len(chunks) > 1:
                release_memory()
            if on_chunk is not None:
                on_chunk(index + 1, len(chunks))
        wav = audio.wav
        peak = max(float(wav.max()), -float(wav.min())) if wav.size else 0.0  # no |wav| copy of a long output
        if peak > 0:
            # one gain for the whole clip (per-chunk gains would jump at the cuts): the contract peak
            wav *= CONTRACT.mel.peak / peak
        alignment = None
        if timelines:
            from l2s.align.timeline import merge_chunks

            alignment = merge_chunks(timelines, clip.num_frames / FPS)
        return {"wav": wav, "mel": mel, "f0": f0, "texts": out_texts, "confidences": tuple(confidences),
                "evals": evals, "timesteps": timesteps, "prior_mel": prior_mel, "words": tuple(words),
                "alignment": alignment}

    def _chunk_outputs(self, clip: ClipInput, chunks: List[Chunk], texts: List[Optional[str]],
                       speaker: Optional[torch.Tensor], ref_level: Optional[float], settings: Any,
                       guidance: Guidance, seed: Optional[int]) -> Iterator[ChunkOutput]:
        """The chunks one by one (each chunk's tensors are freed before the next one starts)."""
        for index, (chunk, given) in enumerate(zip(chunks, texts)):
            chunk_seed = None if seed is None else seed + index
            roi = clip.roi[chunk.start:chunk.end]
            need_features = self.generator.needs_features or self.prior_model is not None
            lips = None
            if self.vsr is not None and (need_features or given is None):
                lips = self.read_lips(roi, decode=given is None)
            features = None if lips is None else lips.features
            prior = self.prior(features, speaker, chunk_seed, ref_level) if features is not None else None
            chunk_text = given if given is not None else (lips.text if lips is not None else "")
            timeline = self.align(features, chunk_text) if features is not None else None
            sample = self.sample_mel(roi, features, None if prior is None else prior.mel_norm, chunk_text,
                                     clip.face, speaker, settings, guidance, chunk_seed,
                                     prior_f0=None if prior is None else prior.f0,
                                     prior_voiced=None if prior is None else prior.voiced, alignment=timeline)
            wav = self.vocode(sample.mel)
            read = given is None and lips is not None
            yield ChunkOutput(chunk=chunk, text=chunk_text, confidences=lips.confidences if read else (),
                              mel=sample.mel[0].float().cpu().numpy(),
                              f0=None if prior is None else prior.f0[0].float().cpu().numpy(), wav=wav,
                              network_evals=sample.network_evals, timesteps=sample.timesteps,
                              prior_mel=None if prior is None else prior.mel_norm[0].float().cpu().numpy(),
                              words=lips.words if read else (), alignment=timeline, alignment_start=chunk.start)
            del sample, prior, features, lips  # free the chunk's tensors before the next one


def _core_words(words: Tuple[Span, ...], chunk: Chunk) -> List[Span]:
    """A chunk's words (seconds from its first frame) placed in the whole clip, those that start in the frames
    the chunk owns (the overlap's words belong to one chunk)."""
    shift = chunk.start / FPS
    lo, hi = chunk.core_start / FPS, chunk.core_end / FPS
    return [Span(w.start + shift, w.end + shift, w.label) for w in words if lo <= w.start + shift < hi]
