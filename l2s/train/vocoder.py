"""Training stage ``vocoder``: a GAN vocoder (any vocoder architecture with weights: Vocos, HiFi-GAN...) at the
signal contract.

Each training item is a random segment of ``segment_frames`` mel hops from a
peak-normalised utterance (the level the contract mel implies, as at inference); the
generator renders it from its contract mel. Every step updates the discriminators
(multi-period + multi-resolution) on detached output, then the generator on the
adversarial, feature-matching and mel L1 terms of :mod:`l2s.train.vocoder_gan`, each with
its own optimiser. Evaluation renders whole utterances from their contract mels
(copy-synthesis) and reports the mel L1 over valid frames (the checkpoint criterion)
and, on the first ``metric_utterances`` of the split, STOI and wideband PESQ when
:mod:`l2s.metrics` can be imported. The best generator is exported as an l2s vocoder
directory (``<output_folder>/model``) that ``get_vocoder`` and ``l2s vocode`` load.

Fine-tuning on generated mels (``input_mel: manifest``, usually with ``init_from`` a trained vocoder): the
generator's input is each utterance's ``mel`` file from the manifest (a mel generator's output for that clip,
frame-aligned with its recording: :mod:`l2s.train.generated_mels`) instead of the recording's own mel, while
the target stays the recording. The vocoder learns to render what the mel generator gives it
(ground-truth-aligned fine-tuning, as HiFi-GAN's vocoder is tuned to Tacotron 2's mels); evaluation renders the
same generated mels, so the valid mel L1 measures the whole chain.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

import speechbrain as sb
import torch
from torch import nn

from l2s.config import HOP_LENGTH, SILENT_MEL
from l2s.errors import InputError, ModelError
from l2s.features.mel import MelSpectrogram, peak_normalize
from l2s.train.brain import L2SBrain
from l2s.train.budget import within_budget
from l2s.train.common import make_loader, model_config, rank_and_world, unwrap, write_metrics
from l2s.train.vocoder_gan import GANObjective, discriminator_objective, generator_objective
from l2s.vocoder.base import MEL_LOG, MEL_NORM, convert_mel_space
from l2s.vocoder.discriminators import MultiPeriodDiscriminator, MultiResolutionDiscriminator
from l2s.vocoder.losses import MelL1Loss
from l2s.vocoder.registry import save_vocoder
from l2s.vocoder.stft_loss import MultiResolutionSTFTLoss

logger = logging.getLogger(__name__)

FIELDS = ("id", "wav")
DISCRIMINATORS = ("mpd", "mrd")
INPUT_MELS = ("audio", "manifest")  # the recording's own mel (copy-synthesis), or the manifest's mel files

LR_KINDS = ("constant", "exponential", "cosine")


@dataclass(frozen=True)
class LRSchedule:
    """Learning-rate factor as a function of the optimiser step (both optimisers alike).

    Attributes:
        kind: ``"constant"``; ``"exponential"`` (HiFi-GAN: times ``gamma`` every
            ``every_steps`` steps); ``"cosine"`` (Vocos: half a cosine from 1 to 0 over the
            run, after ``warmup_steps`` of linear warm-up).
        gamma: exponential decay per ``every_steps``.
        every_steps: steps per decay of ``gamma``.
        warmup_steps: linear warm-up steps (cosine only).
    """

    kind: str = "constant"
    gamma: float = 0.999
    every_steps: int = 1000
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.kind not in LR_KINDS:
            raise ValueError(f"lr schedule kind must be one of {LR_KINDS}, got {self.kind!r}")
        if self.every_steps < 1 or self.warmup_steps < 0:
            raise ValueError("every_steps must be >= 1 and warmup_steps >= 0")

    def factor(self, step: int, total_steps: int) -> float:
        """The factor on the base rate at optimiser step ``step`` of ``total_steps``."""
        if self.kind == "exponential":
            return self.gamma ** (step / self.every_steps)
        if self.kind == "cosine":
            if step < self.warmup_steps:
                return (step + 1) / self.warmup_steps
            span = max(total_steps - self.warmup_steps, 1)
            progress = min((step - self.warmup_steps) / span, 1.0)
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0


def random_segments(wav: torch.Tensor, lengths: torch.Tensor, num_samples: int,
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """One random window of ``num_samples`` per utterance; shorter ones are zero-padded.

    Args:
        wav: ``(B, N)`` zero-padded waveforms.
        lengths: ``(B,)`` valid samples per row.
        num_samples: window length.

    Returns:
        ``(B, num_samples)``.
    """
    out = wav.new_zeros(wav.shape[0], num_samples)
    for i, n in enumerate(lengths.tolist()):
        start = int(torch.randint(0, max(n - num_samples, 0) + 1, (1,), generator=generator))
        piece = wav[i, start:min(start + num_samples, n)]
        out[i, :piece.shape[0]] = piece
    return out


def aligned_segments(wav: torch.Tensor, wav_lengths: torch.Tensor, mel: torch.Tensor, mel_lengths: torch.Tensor,
                     num_frames: int, generator: Optional[torch.Generator] = None):
    """One random window of ``num_frames`` mel frames per utterance, and the audio those frames cover.

    Frame ``t`` of a contract mel is centred on sample ``t * hop``, so frames ``f .. f + n - 1`` render samples
    ``f * hop .. (f + n) * hop``. Windows past an utterance's end are padded: silence in the mel, zeros in the
    audio.

    Args:
        wav: ``(B, N)`` zero-padded waveforms; ``wav_lengths`` ``(B,)`` their valid samples.
        mel: ``(B, T, 80)`` model-space mels frame-aligned with ``wav``; ``mel_lengths`` ``(B,)`` valid frames.
        num_frames: window length in mel frames.

    Returns:
        ``(B, num_frames * hop)`` audio and ``(B, 80, num_frames)`` mel.
    """
    batch, n_mels = mel.shape[0], mel.shape[-1]
    audio = wav.new_zeros(batch, num_frames * HOP_LENGTH)
    frames = mel.new_full((batch, n_mels, num_frames), SILENT_MEL)
    for i in range(batch):
        usable = min(int(mel_lengths[i]), -(-int(wav_lengths[i]) // HOP_LENGTH))
        start = int(torch.randint(0, max(usable - num_frames, 0) + 1, (1,), generator=generator))
        piece = mel[i, start:min(start + num_frames, usable)]
        frames[i, :, :piece.shape[0]] = piece.T
        samples = wav[i, start * HOP_LENGTH:min((start + num_frames) * HOP_LENGTH, int(wav_lengths[i]))]
        audio[i, :samples.shape[0]] = samples
    return audio, frames


@contextmanager
def frozen(modules: List[nn.Module], enabled: bool = True) -> Iterator[None]:
    """Parameters of ``modules`` without gradients inside the block (saves their weight gradients)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad] if enabled else []
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class VocoderBrain(L2SBrain):
    """Alternating discriminator / generator updates of a contract vocoder.

    Modules: ``generator`` (the vocoder being trained: a :class:`~l2s.vocoder.vocos.VocosVocoder`, a
    :class:`~l2s.vocoder.hifigan.HiFiGAN`...), ``mpd`` and ``mrd``. Needs ``total_steps``
    set before :meth:`fit` when the learning-rate schedule is a cosine.
    """

    eval_accumulators = ("eval_sums",)

    total_steps: int = 0

    # ---- set-up -------------------------------------------------------------------------
    def init_optimizers(self):
        hp = self.hparams
        disc_params = [p for name in DISCRIMINATORS for p in self.modules[name].parameters()]
        self.opt_g = hp.opt_class_generator(self.modules.generator.parameters())
        self.opt_d = hp.opt_class_discriminator(disc_params)
        self.optimizers_dict = {"generator": self.opt_g, "discriminator": self.opt_d}
        self.optimizer = self.opt_g  # what SpeechBrain's helpers and the log read
        self.base_lrs = {name: [g["lr"] for g in opt.param_groups] for name, opt in self.optimizers_dict.items()}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer_generator", self.opt_g)
            self.checkpointer.add_recoverable("optimizer_discriminator", self.opt_d)

    def _tools(self) -> None:
        if not hasattr(self, "mel"):
            self.mel = MelSpectrogram().to(self.device)
            self.mel_loss = MelL1Loss().to(self.device)
            self.stft_loss = MultiResolutionSTFTLoss().to(self.device) if self.hparams.objective.stft > 0 else None

    def on_fit_start(self):
        super().on_fit_start()
        self._tools()

    def on_evaluate_start(self, max_key=None, min_key=None):
        super().on_evaluate_start(max_key, min_key)
        self._tools()

    # ---- training -----------------------------------------------------------------------
    def _set_lr(self) -> float:
        factor = self.hparams.lr_schedule.factor(self.optimizer_step, self.total_steps)
        for name, opt in self.optimizers_dict.items():
            for group, base in zip(opt.param_groups, self.base_lrs[name]):
                group["lr"] = base * factor
        return factor

    @property
    def generated_input(self) -> bool:
        """Whether the generator's input is the manifest's (generated) mel rather than the recording's."""
        return self.hparams.input_mel == "manifest"

    def _render(self, wav: torch.Tensor) -> torch.Tensor:
        """Peak-level waveforms ``(B, N)`` to the generator's rendering ``(B, N)`` of their contract mel."""
        frames = wav.shape[-1] // HOP_LENGTH
        # Centred STFT frames: frame t is centred on sample t * hop, so frames 0..N/hop-1 render N samples.
        return self._render_mel(self.mel(wav)[..., :frames], MEL_LOG, wav.shape[-1])

    def _render_mel(self, mel: torch.Tensor, space: str, num_samples: int) -> torch.Tensor:
        """``(B, 80, T)`` mels in ``space`` to ``(B, num_samples)`` audio (cut, or padded with zeros)."""
        generator = unwrap(self.modules.generator)
        out = self.modules.generator(convert_mel_space(mel, space, generator.mel_space))[..., :num_samples]
        return torch.nn.functional.pad(out, (0, num_samples - out.shape[-1]))

    def _training_pair(self, batch) -> tuple:
        """A random window of each utterance: ``(peak-level real audio, the generator's rendering)``."""
        wav = peak_normalize(batch["wav"].to(self.device))
        frames = int(self.hparams.segment_frames)
        if self.generated_input:
            real, mel = aligned_segments(wav, batch["wav_lengths"], batch["mel"].to(self.device), batch["mel_lengths"],
                                         frames)
            return real, self._render_mel(mel, MEL_NORM, real.shape[-1])
        real = random_segments(wav, batch["wav_lengths"], frames * HOP_LENGTH)
        return real, self._render(real)

    def _judge_for_discriminators(self, real: torch.Tensor, fake: torch.Tensor):
        """Real and detached generated audio judged in ONE forward per discriminator (DDP allows one)."""
        n = real.shape[0]
        groups = {}
        for name in DISCRIMINATORS:
            both = self.modules[name](torch.cat([real, fake.detach()]))
            groups[name] = ([(logits[:n], [m[:n] for m in maps]) for logits, maps in both],
                            [(logits[n:], [m[n:] for m in maps]) for logits, maps in both])
        return groups

    def _judge_for_generator(self, real: torch.Tensor, fake: torch.Tensor):
        """Real audio judged without gradients (feature-matching targets), generated audio with them."""
        groups = {}
        for name in DISCRIMINATORS:
            with torch.no_grad():
                judged_real = unwrap(self.modules[name])(real)
            groups[name] = (judged_real, self.modules[name](fake))
        return groups

    def _clip_step(self, optimizer: torch.optim.Optimizer) -> None:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.hparams.max_grad_norm)
        optimizer.step()

    def fit_batch(self, batch):
        hp = self.hparams
        self._set_lr()
        real, fake = self._training_pair(batch)
        adversarial = self.optimizer_step >= int(hp.pretrain_mel_steps)
        discriminators = [self.modules[name] for name in DISCRIMINATORS]
        loss_d = None
        if adversarial:
            loss_d = discriminator_objective(self._judge_for_discriminators(real, fake), hp.objective)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self._clip_step(self.opt_d)
        # Freezing the discriminators skips their weight gradients; DDP needs every
        # registered parameter to get one, so wrapped modules stay trainable.
        ddp = any(m is not unwrap(m) for m in discriminators)
        with frozen(discriminators, enabled=not ddp):
            groups = self._judge_for_generator(real, fake) if adversarial else {}
            stft = self.stft_loss(fake, real).total if self.stft_loss is not None else None
            terms = generator_objective(groups, self.mel_loss(fake, real), hp.objective, stft)
            self.check_loss_isfinite(terms["total"])
            self.opt_g.zero_grad(set_to_none=True)
            terms["total"].backward()
        self._clip_step(self.opt_g)
        self.optimizer_step += 1
        self._accumulate_train(terms, loss_d)
        return terms["total"].detach().cpu()

    def _accumulate_train(self, terms: Mapping[str, torch.Tensor], loss_d: Optional[torch.Tensor]) -> None:
        s = self.train_sums
        s["steps"] += 1
        for key in ("mel", "adversarial", "feature_matching", "stft"):
            s[key] += float(terms[key].detach())
        s["discriminator"] += float(loss_d.detach()) if loss_d is not None else 0.0

    # ---- evaluation ---------------------------------------------------------------------
    def compute_forward(self, batch, stage):
        """Whole (padded) utterances rendered from their mel, the recording's (copy-synthesis) or the manifest's:
        ``(peak-level reference, rendering)``."""
        wav = peak_normalize(batch["wav"].to(self.device))
        if self.generated_input:
            return wav, self._render_mel(batch["mel"].to(self.device).transpose(1, 2), MEL_NORM, wav.shape[-1])
        return wav, self._render_mel(self.mel(wav), MEL_LOG, wav.shape[-1])

    def compute_objectives(self, predictions, batch, stage):
        real, fake = predictions
        lengths = batch["wav_lengths"].to(self.device)
        sample_mask = (torch.arange(real.shape[-1], device=self.device)[None] < lengths[:, None]).to(real)
        ref, hyp = self.mel(real), self.mel(fake * sample_mask)
        frames = 1 + lengths // HOP_LENGTH
        frame_mask = (torch.arange(ref.shape[-1], device=self.device)[None] < frames[:, None]).to(ref)
        err = ((hyp - ref).abs().mean(1) * frame_mask).sum()
        self.eval_sums["mel_l1"] += float(err)
        self.eval_sums["frames"] += float(frame_mask.sum())
        self._intelligibility(real, fake, lengths)
        self.keep_examples(stage, batch["id"], mel=hyp, wav=fake, what="vocoded", mel_lengths=frames,
                           wav_lengths=lengths)
        return err / frame_mask.sum().clamp_min(1.0)

    def _intelligibility(self, real: torch.Tensor, fake: torch.Tensor, lengths: torch.Tensor) -> None:
        # each rank of a sharded evaluation scores its share of the utterances
        limit = -(-int(self.hparams.metric_utterances) // (rank_and_world()[1] if self._sharded_now else 1))
        if self._metrics is None or self.eval_sums["scored"] >= limit:
            return
        stoi, pesq_wb = self._metrics
        for i, n in enumerate(lengths.tolist()):
            if self.eval_sums["scored"] >= limit:
                return
            ref, hyp = real[i, :n].float().cpu().numpy(), fake[i, :n].float().cpu().numpy()
            self.eval_sums["scored"] += 1
            for score in (stoi(ref, hyp), pesq_wb(ref, hyp)):
                if score.ok:
                    self.eval_sums[score.name] += score.value
                    self.eval_sums[score.name + "_n"] += 1

    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.TRAIN:
            keys = ("steps", "mel", "adversarial", "feature_matching", "stft", "discriminator")
            self.train_sums = dict.fromkeys(keys, 0.0)
            return
        self.eval_sums = dict.fromkeys(("mel_l1", "frames", "scored", "stoi", "stoi_n", "pesq_wb", "pesq_wb_n"), 0.0)
        self._metrics = _load_metrics() if int(self.hparams.metric_utterances) > 0 else None
        self._sharded_now = bool(getattr(self, "_sharded", {}).get(stage))

    def eval_summary(self) -> Dict[str, float]:
        """Mel L1 per frame, and mean STOI / PESQ of the scored utterances (when any scored)."""
        s = self.eval_sums
        out = {"mel_l1": s["mel_l1"] / max(s["frames"], 1.0)}
        for name in ("stoi", "pesq_wb"):
            if s[name + "_n"]:
                out[name] = s[name] / s[name + "_n"]
        return out

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            s = self.train_sums
            steps = max(s.pop("steps"), 1.0)
            self.train_stats = {"loss": stage_loss, **{k: v / steps for k, v in s.items()}}
            return
        self.gather_eval(stage, stage_loss)  # this stage's statistics are its sums, not the batch loss
        stats = self.eval_summary()
        if stage == sb.Stage.VALID:
            lr = self.opt_g.param_groups[0]["lr"]
            self.log_valid(epoch, {"epoch": epoch, "lr": lr, "steps": self.optimizer_step}, self.train_stats, stats)
            self.valid_stats = stats
            self.checkpointer.save_and_keep_only(meta={"mel_l1": stats["mel_l1"]}, min_keys=["mel_l1"])
        else:
            self.test_stats = stats


def _load_metrics():
    """``(stoi, pesq_wb)`` from :mod:`l2s.metrics`, or ``None`` when their packages are missing."""
    try:
        from l2s.metrics.intelligibility import pesq_wb, stoi

        import pesq  # noqa: F401  (imported lazily by pesq_wb: check it is there)
        import pystoi  # noqa: F401
    except ImportError as exc:
        logger.warning("STOI/PESQ skipped: %s", exc)
        return None
    return stoi, pesq_wb


def check_hparams(hparams: Mapping[str, Any]) -> None:
    """The stage's own options, checked before the runner writes anything."""
    entry, config = model_config(hparams, "vocoder")
    if hparams.get("input_mel", "audio") not in INPUT_MELS:
        raise InputError(f"input_mel must be one of {INPUT_MELS}, got {hparams.get('input_mel')!r}")
    if hparams.get("init_from"):  # a source that does not fit is refused before the output folder is made
        start_weights(entry.build(config), str(hparams["init_from"]))


def fields(hparams: Mapping[str, Any]) -> tuple:
    """What a batch holds: the audio, and the manifest's mel when the generator renders that."""
    return FIELDS + (("mel",) if hparams.get("input_mel", "audio") == "manifest" else ())


def start_weights(generator: nn.Module, source: str) -> None:
    """Copy a trained vocoder's weights (``init_from``: its directory, or a pipeline's) into ``generator``.

    Raises:
        InputError: the source is another architecture or size.
    """
    from l2s.hub import component_dir
    from l2s.vocoder.registry import get_vocoder

    try:
        trained = get_vocoder(component_dir(source, "vocoder"))
    except ModelError as exc:
        raise InputError(f"init_from {source}: {exc}") from None
    if type(trained) is not type(generator):
        raise InputError(f"init_from {source}: a {type(trained).__name__}, the recipe builds a "
                         f"{type(generator).__name__}")
    try:
        generator.load_state_dict(trained.state_dict())
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise InputError(f"init_from {source}: weights do not fit the recipe's vocoder ({first[-1].strip()})") from None
    logger.info("vocoder weights from %s", source)


def build_modules(hparams: Mapping[str, Any]) -> Dict[str, nn.Module]:
    """The vocoder (the recipe's ``arch``, ``preset`` and ``model`` overrides) and the two discriminators."""
    entry, config = model_config(hparams, "vocoder")
    generator = entry.build(config)
    mpd = MultiPeriodDiscriminator(periods=tuple(int(p) for p in hparams["mpd_periods"]),
                                   channels=tuple(int(c) for c in hparams["mpd_channels"]))
    mrd = MultiResolutionDiscriminator(channels=int(hparams["mrd_channels"]))
    return {"generator": generator, "mpd": mpd, "mrd": mrd}


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    """Train, evaluate the test splits with the best checkpoint, export ``<output_folder>/model``."""
    if not isinstance(hparams.get("objective"), GANObjective):
        raise InputError("recipe: 'objective' must be a !new:l2s.train.vocoder_gan.GANObjective")
    modules = build_modules(hparams)
    if hparams.get("init_from"):
        start_weights(modules["generator"], str(hparams["init_from"]))
    checkpointer = sb.utils.checkpoints.Checkpointer(
        checkpoints_dir=hparams["save_folder"], recoverables={**modules, "counter": hparams["epoch_counter"]})
    brain = VocoderBrain(modules=modules, opt_class=None, hparams=hparams, run_opts=run_opts,
                         checkpointer=checkpointer)
    batch_fields = fields(hparams)
    pad = {"mel": SILENT_MEL}
    train_loader = make_loader(hparams["train_manifest"], batch_fields, hparams, True, pad_values=pad)
    valid_loader = make_loader(hparams["valid_manifest"], batch_fields, hparams, False, pad_values=pad)
    brain.train_sampler = train_loader.batch_sampler
    brain.total_steps = int(hparams["epoch_counter"].limit) * len(train_loader)
    started = time.time()
    brain.fit(within_budget(brain.hparams.epoch_counter, hparams.get("max_train_minutes")), train_loader,
              valid_loader)
    results: Dict[str, Any] = {"train_seconds": time.time() - started, "steps": brain.optimizer_step}
    if getattr(brain, "valid_stats", None):
        results["valid"] = brain.valid_stats
    for split, manifest in (hparams.get("test_manifests") or {}).items():
        brain.evaluate(make_loader(manifest, batch_fields, hparams, False, pad_values=pad), min_key="mel_l1")
        results[split] = brain.test_stats
        if brain.board is not None:
            brain.board.log_test(split, results[split], int(hparams["epoch_counter"].current))
    # Export the best checkpoint, not the last state (evaluate() recovers it too).
    checkpointer.recover_if_possible(min_key="mel_l1")
    if sb.utils.distributed.if_main_process():
        out = Path(hparams["output_folder"])
        save_vocoder(unwrap(brain.modules.generator).cpu(), out / "model")
        write_metrics(out / "metrics.json", results)
    return results
