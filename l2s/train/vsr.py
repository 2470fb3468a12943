"""Training stage ``vsr``: the lip reader (``auto-avsr``) with Auto-AVSR's hybrid CTC/attention recipe.

Random crop + horizontal flip + adaptive time masking, CTC weight and label smoothing
from the model config, length-bucketed batches, SpeechBrain checkpoints and resume,
and an evaluation step that writes WER/CER per split to ``<output_folder>/metrics.json``.
With ``lm_order`` > 0 a token n-gram language model is estimated from the training transcripts,
joins the test beam search with ``lm_weight`` and is exported with the model (``lm.json``).

Options toward the viseme floor, all off by default (:class:`Objectives`), each a fine-tuning of a trained
reader (``init_from``):

* ``phoneme_ctc_weight``: a phoneme CTC head on the encoder (VALLR's units), its targets the transcript's
  phonemes by :class:`~l2s.text.phonemes.G2P`, exported with the model;
* ``distill_*``: LIBS distillation from a frozen speech recogniser reading the paired audio
  (:mod:`l2s.train.distill`; ``distill_teacher`` is a CTC guide model directory);
* ``pcpg_*``: the CER-reward policy gradient on the attention decoder (:mod:`l2s.train.pcpg`);
* ``freeze_frontend``: the visual front-end frozen and its output computed once per clip (centre crop and
  its mirror image; time masking then acts on the front-end's frames), which makes a fine-tuning epoch
  about twenty times cheaper on a CPU: nine tenths of the reader's training compute is the front-end.
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import speechbrain as sb
import torch
import torch.nn.functional as F

from l2s.data.manifest import read_manifest
from l2s.errors import InputError
from l2s.io.atomic import atomic_write_bytes
from l2s.arch import load_model
from l2s.models.vsr import VSRModel, build_vsr, load_vsr, save_vsr
from l2s.models.vsr.ngram_lm import NgramLM, NgramOptions
from l2s.models.vsr.lexicon import Lexicon, WordLM
from l2s.models.vsr.loss import IGNORE_ID, pad_labels
from l2s.models.vsr.roi_transforms import AugmentOptions, augment_roi, roi_to_input
from l2s.text.phonemes import DEFAULT_INVENTORY, G2P, PhonemeInventory
from l2s.text.tokenizer import load_tokenizer
from l2s.train.brain import L2SBrain, fit_evaluate_export
from l2s.train.common import make_loader, model_config, rank_and_world, unwrap, weight_digest
from l2s.train.distill import DistillHeads, DistillWeights, ctc_guide_teacher, distill_loss
from l2s.train.frozen_cache import FrozenCache
from l2s.train.pcpg import PCPGOptions, pcpg_loss

logger = logging.getLogger(__name__)

#: the architectures this stage trains
ARCHS = ("auto-avsr",)


@dataclass(frozen=True)
class Objectives:
    """The recipe's fine-tuning options (all off by default; see the module docstring).

    Attributes:
        init_from: a lip reader's model directory (path or hub id) whose weights start the run, or None.
        freeze_frontend: freeze the visual front-end and compute its output once per clip.
        frontend_cache: a folder keeping those outputs between runs (None: in memory, for this run).
        phoneme_weight: weight of the phoneme CTC loss (0 = no phoneme head).
        distill: weights of the distillation levels.
        distill_teacher: the teacher's model directory (a CTC guide), needed when ``distill`` is active.
        pcpg: the policy-gradient settings.
    """

    init_from: Optional[str] = None
    freeze_frontend: bool = False
    frontend_cache: Optional[str] = None
    phoneme_weight: float = 0.0
    distill: DistillWeights = DistillWeights()
    distill_teacher: Optional[str] = None
    pcpg: PCPGOptions = PCPGOptions()

    @property
    def auxiliary(self) -> bool:
        """Whether a loss beside the hybrid one is on (or the front-end frozen): a single-process run."""
        return self.freeze_frontend or self.distill.active or self.pcpg.weight > 0


def objectives(hparams: Mapping[str, Any]) -> Objectives:
    """The recipe's :class:`Objectives`.

    Raises:
        InputError: settings that cannot work.
    """
    def number(key: str, default: float) -> float:
        value = hparams.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{key} must be a number, got {value!r}")
        return float(value)

    def integer(key: str, default: int) -> int:
        value = hparams.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{key} must be an integer, got {value!r}")
        return value

    phoneme_weight = number("phoneme_ctc_weight", 0.0)
    if phoneme_weight < 0:
        raise InputError(f"phoneme_ctc_weight must be >= 0, got {phoneme_weight}")
    distill = DistillWeights(frame=number("distill_frame_weight", 0.0),
                             sequence=number("distill_sequence_weight", 0.0),
                             soft=number("distill_soft_weight", 0.0),
                             temperature=number("distill_temperature", 1.0))
    teacher = hparams.get("distill_teacher")
    if distill.active and not teacher:
        raise InputError("distillation needs distill_teacher (a CTC guide model directory, e.g. the bundled "
                         "synthgrid-small's guide)")
    pcpg = PCPGOptions(weight=number("pcpg_weight", 0.0), kernel=integer("pcpg_kernel", 5),
                       samples=integer("pcpg_samples", 2), temperature=number("pcpg_temperature", 1.0),
                       extra_tokens=integer("pcpg_extra_tokens", 5))
    freeze = hparams.get("freeze_frontend", False)
    if not isinstance(freeze, bool):
        raise InputError(f"freeze_frontend must be true or false, got {freeze!r}")
    init_from = hparams.get("init_from")
    cache = hparams.get("frontend_cache")
    return Objectives(init_from=str(init_from) if init_from else None, freeze_frontend=freeze,
                      frontend_cache=str(cache) if cache else None,
                      phoneme_weight=phoneme_weight, distill=distill,
                      distill_teacher=str(teacher) if teacher else None, pcpg=pcpg)


class FrontendCache:
    """The frozen front-end's output per clip: the centre crop and its mirror image, each computed once.

    Args:
        frontend: the lip reader's :class:`~l2s.models.vsr.frontend.Conv3dResNet` (frozen).
        augment: the recipe's augmentation (flip probability, time-mask window and stride).
        seed: seed of the flips and masks.
        folder: where to keep the outputs between runs (``<folder>/<digest of the front-end's weights>/``, one
            file per clip and view), so that runs fine-tuning the same reader compute them once; None: memory.
    """

    def __init__(self, frontend: torch.nn.Module, augment: AugmentOptions, seed: int,
                 folder: Optional[str] = None) -> None:
        self.frontend = frontend
        self.augment = augment
        self.cache = FrozenCache(time_dim=1)
        self.generator = torch.Generator().manual_seed(seed)
        self.folder = Path(folder) / weight_digest(frontend)[:16] if folder else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, ids: Sequence[str], roi: torch.Tensor, lengths: torch.Tensor, train: bool) -> torch.Tensor:
        """``(B, T, F)`` front-end frames of a batch (mirrored at random and time-masked when ``train``)."""
        flips = [train and float(torch.rand((1,), generator=self.generator)) < self.augment.flip_prob for _ in ids]
        keys = [uid + ("|mirror" if f else "") for uid, f in zip(ids, flips)]

        def compute(index: torch.Tensor) -> torch.Tensor:
            stored = [self._read(keys[int(i)]) for i in index]
            if all(x is not None for x in stored):
                return torch.stack([F.pad(x, (0, 0, 0, roi.shape[1] - x.shape[0])) for x in stored])
            video = roi_to_input(roi[index], lengths[index])
            mirror = torch.tensor([flips[int(i)] for i in index])
            video = torch.where(mirror[:, None, None, None].to(video.device), video.flip(-1), video)
            mode = self.frontend.training
            self.frontend.eval()  # frozen: its batch norms keep their statistics
            with torch.no_grad():
                out = self.frontend(video)
            self.frontend.train(mode)
            for k, i in enumerate(index):
                self._write(keys[int(i)], out[k, :int(lengths[i])])
            return out

        frames = self.cache(keys, lengths, compute, roi.shape[1])
        if train:
            frames = frames.clone()
            for b, n in enumerate(lengths.tolist()):
                self._time_mask(frames[b, :n])
        return frames

    def _path(self, key: str) -> Path:
        return self.folder / (key.replace("/", "_") + ".pt")

    def _read(self, key: str) -> Optional[torch.Tensor]:
        if self.folder is None or not self._path(key).is_file():
            return None
        return torch.load(self._path(key), weights_only=True)

    def _write(self, key: str, frames: torch.Tensor) -> None:
        if self.folder is not None:
            buffer = io.BytesIO()
            torch.save(frames.detach().cpu().clone(), buffer)
            atomic_write_bytes(self._path(key), buffer.getvalue())

    def _time_mask(self, clip: torch.Tensor) -> None:
        """Auto-AVSR's adaptive time mask, on front-end frames: masked frames take the clip's mean frame."""
        length = clip.shape[0]
        fill = clip.mean(0)
        for _ in range(int((length + self.augment.mask_stride - 0.1) // self.augment.mask_stride)):
            width = int(torch.randint(0, self.augment.mask_window, (1,), generator=self.generator))
            if width == 0 or length - width <= 0:
                continue
            start = int(torch.randint(0, length - width, (1,), generator=self.generator))
            clip[start:start + width] = fill


class PhonemeTargets:
    """Transcripts -> phoneme ids (:class:`~l2s.text.phonemes.G2P`, memoised per transcript)."""

    def __init__(self, inventory: PhonemeInventory = DEFAULT_INVENTORY) -> None:
        self.inventory = inventory
        self.g2p = G2P()
        self.memo: Dict[str, List[int]] = {}

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """``(B, P)`` ids padded with -1."""
        for text in texts:
            if text not in self.memo:
                words = text.split()
                self.memo[text] = [i for units in self.g2p(words) for i in self.inventory.ids(units)]
        return pad_labels([self.memo[t] for t in texts], IGNORE_ID)


class VSRBrain(L2SBrain):
    """Hybrid CTC/attention training of :class:`~l2s.models.vsr.VSRModel`, with the auxiliary objectives
    of :class:`Objectives`."""

    eval_accumulators = ("wer_metric", "cer_metric")

    checkpoint_key = "WER"

    def on_fit_start(self):
        super().on_fit_start()
        obj: Objectives = self.hparams.objectives
        model: VSRModel = unwrap(self.modules.vsr)
        self.frontend_cache = (FrontendCache(model.frontend, self.hparams.augment, int(self.hparams.seed),
                                             obj.frontend_cache)
                               if obj.freeze_frontend else None)
        self.phoneme_targets = PhonemeTargets(model.inventory) if model.phoneme_ctc is not None else None
        self.pcpg_generator = torch.Generator().manual_seed(int(self.hparams.seed))
        self.aux_sums: Dict[str, float] = defaultdict(float)
        self.aux_batches = 0
        if obj.distill.sequence > 0:
            model.decoder.decoders[-1].src_attn.keep_attention = True

    def compute_forward(self, batch, stage):
        roi = batch["roi"].to(self.device)
        lengths = batch["roi_lengths"].to(self.device)
        train = stage == sb.Stage.TRAIN
        cache = getattr(self, "frontend_cache", None)
        frames, video = None, None
        if cache is not None:
            frames = cache(batch["id"], roi, lengths, train).to(self.device)
        elif train:
            video = augment_roi(roi, lengths, self.hparams.augment)
        else:
            video = roi_to_input(roi, lengths)
        phonemes = None
        if train and getattr(self, "phoneme_targets", None) is not None:
            phonemes = self.phoneme_targets(batch["text"]).to(self.device)
        out = self.modules.vsr(video, lengths, batch["tokens"].to(self.device), phonemes, frames)
        if not train:
            size = self.hparams.valid_beam_size if stage == sb.Stage.VALID else self.hparams.test_beam_size
            self._score(video, frames, lengths, batch, size)
        return out

    def _score(self, video, frames, lengths, batch, beam_size: int):
        """Decode each clip alone (as inference does) and accumulate WER/CER; beam 0 = greedy CTC."""
        model: VSRModel = unwrap(self.modules.vsr)
        beam = model.beam_options(beam_size)
        with torch.no_grad():
            for i in range(lengths.shape[0]):
                n = int(lengths[i])
                if frames is not None:
                    feats = model.encode_frames(frames[i:i + 1, :n])[0]
                else:
                    feats = model.encode_video(video[i:i + 1, :n])[0]
                hyp = model.decode_features(feats, beam).text
                self.wer_metric.append([batch["id"][i]], [hyp.split()], [batch["text"][i].split()])
                self.cer_metric.append([batch["id"][i]], [list(hyp)], [list(batch["text"][i])])

    def compute_objectives(self, predictions, batch, stage):
        if stage != sb.Stage.TRAIN:
            return predictions.total  # the hybrid loss alone: comparable between runs
        obj: Objectives = self.hparams.objectives
        total = predictions.total
        parts: Dict[str, float] = {}
        if predictions.phoneme is not None and obj.phoneme_weight > 0:
            total = total + obj.phoneme_weight * predictions.phoneme
            parts["phoneme_ctc"] = float(predictions.phoneme.detach())
        model: VSRModel = unwrap(self.modules.vsr)
        lengths = batch["roi_lengths"].to(self.device)
        if obj.distill.active:
            total = total + self._distill(predictions, batch, lengths, parts)
        if obj.pcpg.weight > 0:
            labels = batch["tokens"]
            refs = [[int(t) for t in row if int(t) != IGNORE_ID] for row in labels]
            loss, cer = pcpg_loss(model.decoder, predictions.features, lengths, refs, model.sos, model.eos,
                                  obj.pcpg, self.pcpg_generator)
            total = total + obj.pcpg.weight * loss
            parts.update(pcpg=float(loss.detach()), sample_cer=cer)
        for key, value in parts.items():
            self.aux_sums[key] += value
        self.aux_batches += 1
        return total

    def _distill(self, predictions, batch, lengths, parts: Dict[str, float]) -> torch.Tensor:
        obj: Objectives = self.hparams.objectives
        model: VSRModel = unwrap(self.modules.vsr)
        mel = batch["mel"].to(self.device).transpose(1, 2)
        teacher = ctc_guide_teacher(self.hparams.teacher, mel, batch["mel_lengths"].to(self.device), lengths,
                                    predictions.features.shape[1])
        attention = token_mask = None
        if obj.distill.sequence > 0:
            attention = model.decoder.decoders[-1].src_attn.attn.mean(1)  # (B, L + 1, T)
            labels = batch["tokens"].to(self.device)
            n = (labels != IGNORE_ID).sum(1)
            token_mask = torch.arange(labels.shape[1] + 1, device=self.device)[None, :] <= n[:, None]
        loss, terms = distill_loss(obj.distill, self.modules.distill, teacher, predictions.features,
                                   predictions.ctc_log_probs, predictions.decoder_hidden, attention, token_mask)
        parts.update(terms)
        return loss

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if should_step:
            self.hparams.lr_annealing(self.optimizer)

    def on_stage_start(self, stage, epoch=None):
        if stage != sb.Stage.TRAIN:
            self.wer_metric = sb.utils.metric_stats.ErrorRateStats()
            self.cer_metric = sb.utils.metric_stats.ErrorRateStats()
        else:
            self.aux_sums = defaultdict(float)
            self.aux_batches = 0

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            super().on_stage_end(stage, stage_loss, epoch)
            for key, value in self.aux_sums.items():  # each auxiliary term's epoch mean, in the train log
                self.train_stats[key] = value / max(1, self.aux_batches)
            return
        super().on_stage_end(stage, stage_loss, epoch)

    def eval_stats(self, stage):
        return {"WER": self.wer_metric.summarize("error_rate"), "CER": self.cer_metric.summarize("error_rate")}


def lm_options(hparams: Mapping[str, Any]) -> Optional[NgramOptions]:
    """The recipe's language-model settings (``lm_order``, ``lm_weight``, ``lm_discount``); None for
    ``lm_order`` 0 (no language model).

    Raises:
        InputError: settings that cannot work.
    """
    order = hparams.get("lm_order", 0) or 0
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise InputError(f"lm_order must be an integer >= 0 (0: no language model), got {order!r}")
    if order == 0:
        return None
    settings = {"order": order, "weight": hparams.get("lm_weight", 0.0) or 0.0}
    if hparams.get("lm_discount") is not None:  # else NgramOptions' default
        settings["discount"] = hparams.get("lm_discount")
    try:
        return NgramOptions(**{k: v if k == "order" else float(v) for k, v in settings.items()})
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad language-model settings: {exc}") from None


def check_hparams(hparams: Mapping[str, Any]) -> None:
    """Refuse a model, language-model or objective settings that cannot work, before anything is written."""
    obj = objectives(hparams)
    model_config(hparams, "vsr", ARCHS, derived={"phoneme_vocab": len(DEFAULT_INVENTORY) if obj.phoneme_weight else 0})
    lm_options(hparams)


def _start_weights(model: VSRModel, source: str) -> None:
    """Copy a trained reader's weights into ``model`` (``init_from``): the same architecture, except that
    either may have a phoneme head the other lacks (it then starts untrained, or is dropped).

    Raises:
        InputError: the architectures differ.
    """
    src = load_vsr(source)
    mine = replace(model.config, phoneme_vocab=0)
    theirs = replace(src.config, phoneme_vocab=0)
    if mine != theirs:
        fields = [k for k in vars(mine) if getattr(mine, k) != getattr(theirs, k)]
        raise InputError(f"init_from {source}: another architecture (differs in {', '.join(fields)}); set the "
                         f"recipe's preset/model to the source's")
    state = {k: v for k, v in src.state_dict().items()
             if not k.startswith("phoneme_ctc.") or src.config.phoneme_vocab == model.config.phoneme_vocab}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("phoneme_ctc.") for k in missing):
        raise InputError(f"init_from {source}: weights do not fit ({missing + unexpected})")
    logger.info("weights from %s (%s)", source, "the phoneme head starts untrained" if missing else "all")


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    """Train, evaluate every test split with the best checkpoint, export the model directory."""
    obj = objectives(hparams)
    if obj.auxiliary and rank_and_world()[1] > 1:
        raise InputError("freeze_frontend, distillation and PCPG run in one process: start without torchrun")
    phoneme_vocab = len(DEFAULT_INVENTORY) if obj.phoneme_weight > 0 else 0
    _, config = model_config(hparams, "vsr", ARCHS, derived={"phoneme_vocab": phoneme_vocab})
    tokenizer = load_tokenizer(config.tokenizer, hparams.get("tokenizer_dir"))
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens, model config {config.vocab_size}")
    model = build_vsr(config, tokenizer)
    if obj.init_from:
        _start_weights(model, obj.init_from)
    if obj.freeze_frontend:
        model.frontend.requires_grad_(False)
    options = lm_options(hparams)
    texts = [u.text for u in read_manifest(hparams["train_manifest"]) if u.text]
    if options is not None:  # counted on the training transcripts
        model.lm = NgramLM.from_texts(texts, tokenizer, options)
    if model.phoneme_ctc is not None:  # what reads the phoneme head into words, from the same transcripts
        model.lexicon = Lexicon.from_texts(texts, inventory=model.inventory)
        model.word_lm = WordLM.from_texts(texts)
    modules: Dict[str, torch.nn.Module] = {"vsr": model}
    recoverables: Dict[str, Any] = {"vsr": model, "lr_annealing": hparams["lr_annealing"],
                                    "counter": hparams["epoch_counter"]}
    fields = ["id", "text", "roi", "tokens"]
    pad = {"tokens": -1}
    hparams["objectives"] = obj
    if obj.distill.active:
        teacher = load_model(obj.distill_teacher, "guide")
        if not (hasattr(teacher, "encode") and hasattr(teacher, "head")):
            raise InputError(f"distill_teacher {obj.distill_teacher}: not a CTC guide (arch ctc)")
        hparams["teacher"] = teacher.eval().requires_grad_(False)
        modules["distill"] = recoverables["distill"] = DistillHeads(config.d_model, teacher.config.d_model)
        fields.append("mel")
        pad["mel"] = -1.0
    hparams["modules"] = modules
    checkpointer = sb.utils.checkpoints.Checkpointer(checkpoints_dir=hparams["save_folder"],
                                                     recoverables=recoverables)
    brain = VSRBrain(modules=modules, opt_class=hparams["opt_class"], hparams=hparams,
                     run_opts=run_opts, checkpointer=checkpointer)
    train_loader = make_loader(hparams["train_manifest"], fields, hparams, True, tokenizer.encode, pad)
    valid_loader = make_loader(hparams["valid_manifest"], fields, hparams, False, tokenizer.encode, pad)
    return fit_evaluate_export(brain, hparams, "vsr", train_loader, valid_loader,
                               lambda m: make_loader(m, fields, hparams, False, tokenizer.encode, pad), save_vsr)
