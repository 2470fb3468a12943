"""Hybrid CTC/attention training loss of the lip reader (Auto-AVSR / ESPnet conventions).

* CTC: ``CTCLoss(reduction="sum", zero_infinity=True)`` on the CTC head's log-softmax, divided by the batch size.
* Attention: label-smoothed KL divergence (target ``1 - s`` on the label, ``s / (V - 1)`` elsewhere),
  summed over non-ignored positions and divided by the batch size.
* ``total = ctc_weight * ctc + (1 - ctc_weight) * attention``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

#: Label padding value (ESPnet's ``ignore_id``).
IGNORE_ID = -1


@dataclass(frozen=True)
class VSRLoss:
    """Loss terms of one batch (tensors, so ``total`` can be back-propagated).

    Attributes:
        total: weighted sum.
        ctc: CTC loss per utterance.
        attention: label-smoothed decoder loss per utterance.
        accuracy: decoder token accuracy under teacher forcing (no gradient).
        phoneme: the phoneme CTC head's loss (batch mean of summed CTC, as ``ctc``), when the model has the
            head and phoneme labels were given; not in ``total`` (its weight is a training setting).
        features: ``(B, T, D)`` encoder output (for the auxiliary losses of training).
        ctc_log_probs: ``(B, T, V)`` the CTC head's log-probabilities.
        decoder_hidden: ``(B, L + 1, D)`` teacher-forced decoder states before the output layer.
    """

    total: torch.Tensor
    ctc: torch.Tensor
    attention: torch.Tensor
    accuracy: torch.Tensor
    phoneme: Optional[torch.Tensor] = None
    features: Optional[torch.Tensor] = None
    ctc_log_probs: Optional[torch.Tensor] = None
    decoder_hidden: Optional[torch.Tensor] = None


def pad_labels(labels: Sequence[Sequence[int]], ignore_id: int = IGNORE_ID) -> torch.Tensor:
    """Token id lists -> ``(B, L_max)`` int64 padded with ``ignore_id`` (the ``labels`` of the loss)."""
    out = torch.full((len(labels), max((len(y) for y in labels), default=0)), ignore_id, dtype=torch.long)
    for b, ids in enumerate(labels):
        out[b, :len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
    return out


def add_sos_eos(labels: torch.Tensor, sos: int, eos: int,
                ignore_id: int = IGNORE_ID) -> Tuple[torch.Tensor, torch.Tensor]:
    """Decoder input and target from padded labels.

    Args:
        labels: ``(B, L)`` token ids padded with ``ignore_id``.

    Returns:
        ``ys_in (B, L + 1)`` = sos + labels, padded with eos; ``ys_out (B, L + 1)`` = labels + eos, padded
        with ``ignore_id``.
    """
    batch = labels.shape[0]
    lengths = (labels != ignore_id).sum(1)
    ys_in = torch.full((batch, labels.shape[1] + 1), eos, dtype=torch.long, device=labels.device)
    ys_out = torch.full_like(ys_in, ignore_id)
    ys_in[:, 0] = sos
    for b in range(batch):
        n = int(lengths[b])
        ys_in[b, 1:n + 1] = labels[b, :n]
        ys_out[b, :n] = labels[b, :n]
        ys_out[b, n] = eos
    return ys_in, ys_out


def ctc_loss(log_probs: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
             blank: int = 0, ignore_id: int = IGNORE_ID) -> torch.Tensor:
    """Summed CTC loss divided by the batch size.

    Args:
        log_probs: ``(B, T, V)`` log-softmax outputs.
        lengths: ``(B,)`` valid frames.
        labels: ``(B, L)`` padded with ``ignore_id``.
    """
    valid = labels != ignore_id
    targets = labels[valid]
    loss = F.ctc_loss(log_probs.transpose(0, 1).float(), targets, lengths, valid.sum(1), blank=blank,
                      reduction="sum", zero_infinity=True)
    return loss / log_probs.shape[0]


def label_smoothing_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float,
                         ignore_id: int = IGNORE_ID) -> torch.Tensor:
    """Label-smoothed KL divergence summed over valid positions, divided by the batch size.

    Args:
        logits: ``(B, L, V)``.
        target: ``(B, L)`` padded with ``ignore_id``.
    """
    batch, _, vocab = logits.shape
    logits, target = logits.reshape(-1, vocab), target.reshape(-1)
    ignore = target == ignore_id
    dist = torch.full_like(logits, smoothing / (vocab - 1))
    dist.scatter_(1, target.masked_fill(ignore, 0).unsqueeze(1), 1.0 - smoothing)
    kl = F.kl_div(torch.log_softmax(logits, dim=1), dist, reduction="none")
    return kl.masked_fill(ignore.unsqueeze(1), 0.0).sum() / batch


def token_accuracy(logits: torch.Tensor, target: torch.Tensor, ignore_id: int = IGNORE_ID) -> torch.Tensor:
    """Fraction of non-ignored positions where the argmax is the target."""
    valid = target != ignore_id
    correct = (logits.argmax(-1) == target) & valid
    return correct.sum().double() / valid.sum().clamp(min=1).double()


def hybrid_loss(ctc_log_probs: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
                decoder_logits: torch.Tensor, ys_out: torch.Tensor, ctc_weight: float = 0.1,
                smoothing: float = 0.1, blank: int = 0) -> VSRLoss:
    """The weighted CTC + attention loss (see the module docstring)."""
    loss_ctc = ctc_loss(ctc_log_probs, lengths, labels, blank)
    loss_att = label_smoothing_loss(decoder_logits, ys_out, smoothing)
    with torch.no_grad():
        accuracy = token_accuracy(decoder_logits, ys_out)
    return VSRLoss(total=ctc_weight * loss_ctc + (1.0 - ctc_weight) * loss_att, ctc=loss_ctc,
                   attention=loss_att, accuracy=accuracy)
