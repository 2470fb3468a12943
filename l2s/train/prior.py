"""Training stage ``prior``: F0/voicing from the lips and the DDSP coarse prior (NaturalL2S; the ``ddsp``
architecture).

The visual features come from a frozen, already trained lip reader (``vsr_model``).
Loss: the F0 predictor's L1 on voiced log-F0 + BCE on voicing, plus the multi-resolution
STFT loss of the prior waveform (synthesised with the ground-truth F0: teacher forcing)
against the recording. Evaluation runs the prior on its OWN predicted F0 and reports, per
split, voiced F0 RMSE (Hz) with its gross pitch error (GPE: frames more than 20 % off) and the RMSE of the
other frames, voicing error, the prior mel's L1 to the ground-truth mel and
that of a baseline predicting the training-set mean mel.

With ``speaker_reference: True`` both networks also read a speaker embedding: Resemblyzer's, of a *different*
recording of the same speaker (:class:`~l2s.train.speaker_refs.SpeakerReferences`; random in training, fixed in
evaluation), dropped for a whole batch with probability ``speaker_dropout`` so that the learned null embedding
(no ``--ref-audio``) keeps working. Without it the exported model takes no speaker embedding (``speaker_dim: 0``).
Evaluation then also scores the F0 predictor without a reference (``_no_ref``) and with its log-F0 shifted to
the reference recording's pitch level (``_level``, ``_no_ref_level``; :func:`l2s.models.prior.f0.match_f0_level`).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import speechbrain as sb
import torch

from l2s.arch import save_model
from l2s.config import HOP_LENGTH
from l2s.errors import InputError
from l2s.features.mel import wav_to_mel
from l2s.metrics.spectral import PitchErrorSums, pitch_error_sums
from l2s.models.prior.f0 import F0Targets, decode_f0, f0_loss, match_f0_level
from l2s.models.vsr import load_vsr
from l2s.train.brain import L2SBrain, fit_evaluate_export
from l2s.train.common import make_loader, model_config, unwrap
from l2s.train.frozen_cache import FrozenCache
from l2s.train.speaker_refs import SpeakerReferences
from l2s.vocoder.stft_loss import MultiResolutionSTFTLoss


# evaluation variants of the F0 predictor beside the trained one (with speaker references only)
REFERENCE_VARIANTS = ("_no_ref", "_level", "_no_ref_level")
#: the architectures this stage trains
ARCHS = ("ddsp",)
#: fields the stage sets itself: the widths follow the lip reader, the log-F0 statistics the corpus
DERIVED = ("f0.feature_dim", "ddsp.feature_dim", "f0.log_f0_mean", "f0.log_f0_std")


def check_hparams(hparams: Mapping[str, Any]) -> None:
    """The stage's own options, checked before the runner writes anything."""
    model_config(hparams, "prior", ARCHS, reserved=DERIVED)
    if not isinstance(hparams.get("speaker_reference", False), bool):
        raise InputError(f"speaker_reference must be True or False, got {hparams['speaker_reference']!r}")
    dropout = hparams.get("speaker_dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
        raise InputError(f"speaker_dropout must be a probability in [0, 1], got {dropout!r}")


def prior_config(hparams: Mapping[str, Any], feature_dim: int, log_f0_mean: float, log_f0_std: float,
                 speaker_references: bool):
    """The recipe's prior (arch, preset, ``model`` overrides) adapted to the lip reader's feature width and the
    corpus's log-F0 statistics; without speaker references it takes no speaker embedding (``speaker_dim`` 0)."""
    speaker = {} if speaker_references else {"speaker_dim": 0}
    derived = {"f0": {"feature_dim": int(feature_dim), "log_f0_mean": log_f0_mean, "log_f0_std": log_f0_std,
                      **speaker},
               "ddsp": {"feature_dim": int(feature_dim), **speaker}}
    return model_config(hparams, "prior", ARCHS, derived=derived, reserved=DERIVED)


def targets_from_batch(batch, device) -> F0Targets:
    f0 = batch["f0"].to(device)
    voiced = f0 > 0
    mask = torch.arange(f0.shape[1], device=device)[None] < batch["f0_lengths"].to(device)[:, None]
    log_f0 = torch.where(voiced, f0.clamp_min(1e-3).log(), torch.zeros_like(f0))
    return F0Targets(log_f0=log_f0, voiced=voiced & mask, mask=mask)


class PriorBrain(L2SBrain):
    """Trains :class:`~l2s.models.prior.ddsp.CoarsePrior` on frozen lip-reader features."""

    eval_accumulators = ("sums", "pitch")

    def compute_forward(self, batch, stage):
        roi = batch["roi"].to(self.device)
        lengths = batch["roi_lengths"].to(self.device)
        with torch.no_grad():
            features = self.feature_cache(batch["id"], lengths, lambda i: self.hparams.vsr.encode(
                roi[i.to(self.device)], lengths[i.to(self.device)]), roi.shape[1]).to(self.device)
        targets = targets_from_batch(batch, self.device)
        override = targets.f0_hz if stage == sb.Stage.TRAIN else None
        speaker = self._speaker(batch["id"], stage)
        if stage != sb.Stage.TRAIN and self.references is not None:
            # the F0 predictor without a reference (the null embedding: no --ref-audio), and both with their
            # level shifted to the reference recording's pitch level (match_f0_level)
            levels = self.references.batch_levels(batch["id"]).to(self.device)
            for suffix, spk in (("_no_ref", None), ("_level", speaker), ("_no_ref_level", None)):
                out = unwrap(self.modules.prior).f0(features, lengths, spk)
                if suffix.endswith("_level"):
                    out = match_f0_level(out, levels)
                self._score_f0(*decode_f0(out), targets, suffix)
        return self.modules.prior(features, lengths, speaker, override), targets

    def _speaker(self, ids, stage) -> Optional[torch.Tensor]:
        """Reference embeddings ``(B, E)`` (None: the null embedding), or None without references."""
        if self.references is None:
            return None
        if stage == sb.Stage.TRAIN:
            if float(torch.rand(1, generator=self.speaker_generator)) < self.speaker_dropout:
                return None
            return self.references.batch(ids, self.speaker_generator).to(self.device)
        return self.references.batch(ids).to(self.device)

    def compute_objectives(self, predictions, batch, stage):
        out, targets = predictions
        wav = batch["wav"].to(self.device)
        n = min(wav.shape[1], out.wav.shape[1])
        loss = f0_loss(out.f0_output, targets).total + self.stft_loss(out.wav[:, :n], wav[:, :n]).total
        if stage != sb.Stage.TRAIN:
            self._score(out, targets, wav)
            lengths = batch["wav_lengths"]
            self.keep_examples(stage, batch["id"], mel=out.mel_norm, wav=out.wav, what="prior",
                               mel_lengths=lengths // HOP_LENGTH, wav_lengths=lengths)
            self.keep_examples(stage, batch["id"], wav=wav, what="recording", wav_lengths=lengths)
        if stage == sb.Stage.TEST:
            self._prior_stoi(out.wav, wav, batch["wav_lengths"])
        return loss

    def _prior_stoi(self, prior: torch.Tensor, wav: torch.Tensor, lengths: torch.Tensor) -> None:
        """STOI of each prior waveform against its ground truth (test splits only: it is slow-ish)."""
        from l2s.metrics.intelligibility import stoi

        for i, n in enumerate(lengths.tolist()):
            n = min(int(n), prior.shape[1])
            score = stoi(wav[i, :n].float().cpu().numpy(), prior[i, :n].float().cpu().numpy())
            if score.ok:
                self.sums["stoi"] += score.value
                self.sums["stoi_n"] += 1

    def _score_f0(self, f0_hz, voiced, targets, suffix: str = "") -> int:
        """Accumulate voiced F0 errors (:class:`~l2s.metrics.spectral.PitchErrorSums`) and voicing errors;
        returns the frames compared."""
        t = min(f0_hz.shape[1], targets.mask.shape[1])
        mask, ref_voiced = targets.mask[:, :t], targets.voiced[:, :t]
        both = mask & ref_voiced & voiced[:, :t]
        sums = pitch_error_sums(targets.f0_hz[:, :t].cpu().numpy(), f0_hz[:, :t].detach().cpu().numpy(),
                                both.cpu().numpy())
        self.pitch["f0" + suffix] = self.pitch.get("f0" + suffix, PitchErrorSums()) + sums
        self.sums["vuv_err" + suffix] += float(((voiced[:, :t] != ref_voiced) & mask).sum())
        return t

    def _score(self, out, targets, wav):
        t = self._score_f0(out.f0, out.voiced, targets)
        mask = targets.mask[:, :t]
        self.sums["frames"] += float(mask.sum())
        ref_mel = wav_to_mel(wav)[..., :t]
        m = mask[:, None, :].to(ref_mel)
        self.sums["mel_l1"] += float(((out.mel_norm[..., :t] - ref_mel).abs() * m).sum() / ref_mel.shape[1])
        base = self.mean_mel.to(ref_mel)[None, :, None]
        self.sums["base_l1"] += float(((base - ref_mel).abs() * m).sum() / ref_mel.shape[1])

    def on_fit_start(self):
        super().on_fit_start()
        self.stft_loss = MultiResolutionSTFTLoss().to(self.device)

    def on_evaluate_start(self, max_key=None, min_key=None):
        super().on_evaluate_start(max_key, min_key)
        if not hasattr(self, "stft_loss"):
            self.stft_loss = MultiResolutionSTFTLoss().to(self.device)

    def on_stage_start(self, stage, epoch=None):
        keys = ("vuv_err", "frames", "mel_l1", "base_l1", "stoi", "stoi_n")
        self.sums = dict.fromkeys(keys + tuple(f"vuv_err{v}" for v in REFERENCE_VARIANTS), 0.0)
        self.pitch: Dict[str, PitchErrorSums] = {}

    def eval_stats(self, stage) -> Dict[str, float]:
        s = self.sums
        frames = max(s["frames"], 1.0)
        stats = {**self._pitch_stats(""), "voicing_error": s["vuv_err"] / frames,
                 "prior_mel_l1": s["mel_l1"] / frames, "mean_mel_l1": s["base_l1"] / frames}
        if s["stoi_n"]:
            stats["prior_stoi"] = s["stoi"] / s["stoi_n"]
        if self.references is not None:
            for v in REFERENCE_VARIANTS:
                stats.update(self._pitch_stats(v))
                stats[f"voicing_error{v}"] = s[f"vuv_err{v}"] / frames
        return stats

    def _pitch_stats(self, suffix: str) -> Dict[str, float]:
        """Voiced F0 RMSE (Hz), gross pitch error and the RMSE of the frames without one, of a variant."""
        sums = self.pitch.get("f0" + suffix, PitchErrorSums())
        return {f"f0_rmse_hz{suffix}": sums.rmse, f"gpe{suffix}": sums.gpe, f"f0_rmse_fine_hz{suffix}": sums.fine_rmse}


def corpus_statistics(loader, max_batches: int = 50):
    """Mean and std of voiced log-F0, and the mean model-space mel vector, over training batches."""
    log_f0, mel_sum, mel_frames = [], torch.zeros(80), 0
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        f0 = batch["f0"]
        log_f0.append(f0[f0 > 0].log())
        for wav, n in zip(batch["wav"], batch["wav_lengths"]):
            mel = wav_to_mel(wav[: int(n)])
            mel_sum += mel.sum(-1)
            mel_frames += mel.shape[-1]
    values = torch.cat(log_f0)
    return float(values.mean()), float(values.std().clamp_min(0.05)), mel_sum / max(mel_frames, 1)


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    vsr = load_vsr(hparams["vsr_model"])
    for p in vsr.parameters():
        p.requires_grad_(False)
    hparams["vsr"] = vsr
    fields = ("id", "roi", "wav", "f0")
    train_loader = make_loader(hparams["train_manifest"], fields, hparams, True)
    valid_loader = make_loader(hparams["valid_manifest"], fields, hparams, False)
    mean, std, mean_mel = corpus_statistics(train_loader, int(hparams.get("stat_batches", 50)))
    references = None
    if hparams.get("speaker_reference", False):
        manifests = [hparams["train_manifest"], hparams["valid_manifest"], *hparams["test_manifests"].values()]
        references = SpeakerReferences(manifests)
    if references is not None and float(hparams.get("speaker_dropout", 0.0)) > 0.0:
        # a batch without its reference uses the null embedding and leaves the speaker projections
        # without gradient (and the other way round): DDP must be told, or its reducer stalls
        run_opts = {**run_opts, "find_unused_parameters": True}
    entry, config = prior_config(hparams, vsr.feature_dim, mean, std, references is not None)
    prior = entry.build(config)
    checkpointer = sb.utils.checkpoints.Checkpointer(
        checkpoints_dir=hparams["save_folder"], recoverables={"prior": prior, "counter": hparams["epoch_counter"]})
    brain = PriorBrain(modules={"prior": prior}, opt_class=hparams["opt_class"], hparams=hparams,
                       run_opts=run_opts, checkpointer=checkpointer)
    brain.hparams.vsr.to(brain.device)
    brain.feature_cache = FrozenCache(1, bool(hparams.get("cache_conditions", True)))
    brain.mean_mel = mean_mel
    brain.references, brain.speaker_dropout = references, float(hparams.get("speaker_dropout", 0.0))
    brain.speaker_generator = torch.Generator().manual_seed(int(hparams.get("seed", 0)))
    return fit_evaluate_export(brain, hparams, "prior", train_loader, valid_loader,
                               lambda m: make_loader(m, fields, hparams, False),
                               lambda model, path: save_model(model, path, "prior"))
