"""Losses over sentence embeddings of (anchor, positive, negative) batches.

They take embeddings rather than tokenized features, so the trainer runs one forward
pass over the whole batch (anchors, positives and negatives together: bigger matrix
products, one tokenizer call) and the losses stay independent of library versions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def triplet_correct(anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
    """1 where the anchor is closer (cosine) to its positive than to its negative."""
    a, p, n = (F.normalize(x.float(), dim=-1) for x in (anchor, positive, negative))
    return ((a * p).sum(-1) > (a * n).sum(-1)).float()


class TripletLoss(torch.nn.Module):
    """max(0, d(a, p) - d(a, n) + margin) with the cosine distance d = 1 - cos."""

    def __init__(self, margin: float = 0.3) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        a, p, n = (F.normalize(x.float(), dim=-1) for x in (anchor, positive, negative))
        distance_pos = 1 - (a * p).sum(-1)
        distance_neg = 1 - (a * n).sum(-1)
        return F.relu(distance_pos - distance_neg + self.margin).mean()


class MultipleNegativesRankingLoss(torch.nn.Module):
    """Cross-entropy of each anchor against all positives and all hard negatives in the batch.

    Row i's target is positive i; every other positive and every negative (its own hard
    negative included) is a negative for it.
    """

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        a = F.normalize(anchor.float(), dim=-1)
        candidates = F.normalize(torch.cat([positive, negative]).float(), dim=-1)
        scores = self.scale * a @ candidates.T
        labels = torch.arange(a.shape[0], device=a.device)
        return F.cross_entropy(scores, labels)


def in_batch_correct(anchor: Tensor, positive: Tensor) -> Tensor:
    """1 where the anchor's closest positive in the batch (cosine) is its own."""
    a, p = (F.normalize(x.float(), dim=-1) for x in (anchor, positive))
    return ((a @ p.T).argmax(-1) == torch.arange(a.shape[0], device=a.device)).float()


class SymmetricRankingLoss(torch.nn.Module):
    """The multiple-negatives ranking loss over (query, code) pairs, both ways: each query
    against every code of the batch and each code against every query (the signals recipe)."""

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, anchor: Tensor, positive: Tensor) -> Tensor:
        a, p = (F.normalize(x.float(), dim=-1) for x in (anchor, positive))
        scores = self.scale * a @ p.T
        labels = torch.arange(a.shape[0], device=a.device)
        return (F.cross_entropy(scores, labels) + F.cross_entropy(scores.T, labels)) / 2


def build_loss(name: str, margin: float, scale: float, recipe: str = "triplets") -> torch.nn.Module:
    if recipe == "signals":
        return SymmetricRankingLoss(scale)
    if name == "mnrl":
        return MultipleNegativesRankingLoss(scale)
    return TripletLoss(margin)
