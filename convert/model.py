"""The AutoEncoder: feature tokenizer + 4-head self-attention + SwiGLU MLP encoder, mirrored decoder.

Shapes (n = batch):

- input ``x``: (n, 30) float32, standard-scaled readings;
- each feature becomes a token: ``token_i = x_i * W_i + b_i`` (30 tokens of width ``TOKEN_DIM``);
- ``nn.MultiheadAttention`` (4 heads) over the 30 tokens gives attended tokens and a (n, 30, 30) weight matrix
  (averaged over heads; row q says how much query feature q attends to each key feature);
- a linear read-out turns each attended token back into one number, added to ``x`` (residual): (n, 30);
- encoder MLP 30 -> 64 -> 32 -> 16 (SwiGLU) -> 12 (linear): the latent (``latent_dim``, 12 by default; 4, 8, 16 for
  the other sizes the ablation tries);
- decoder 12 -> 16 -> 32 -> 64 (SwiGLU) -> 30 (linear): the reconstruction;
- an auxiliary defect head 12 -> 1 (logit) on the latent, trained with focal loss.

The per-feature attention served to users is the matrix averaged over queries, (n, 30): how much each input
feature is attended to, a row summing to 1.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

N_FEATURES = 30
LATENT_DIM = 12
TOKEN_DIM = 16
N_HEADS = 4
ENCODER_DIMS = (N_FEATURES, 64, 32, 16)
DECODER_DIMS = (16, 32, 64)  # after the latent


class SwiGLU(nn.Module):
    """``silu(x W_a + b_a) * (x W_b + b_b)``: one Linear to twice the width, split in two."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.d_out = d_out
        self.proj = nn.Linear(d_in, 2 * d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        return F.silu(h[..., : self.d_out]) * h[..., self.d_out :]


def _mlp(dims: tuple[int, ...], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = [SwiGLU(a, b) for a, b in itertools.pairwise(dims)]
    layers.append(nn.Linear(dims[-1], out_dim))
    return nn.Sequential(*layers)


class AutoEncoder(nn.Module):
    def __init__(self, n_features: int = N_FEATURES, latent_dim: int = LATENT_DIM) -> None:
        super().__init__()
        self.token_weight = nn.Parameter(torch.randn(n_features, TOKEN_DIM) * 0.5)
        self.token_bias = nn.Parameter(torch.zeros(n_features, TOKEN_DIM))
        self.attention = nn.MultiheadAttention(TOKEN_DIM, N_HEADS, batch_first=True)
        self.readout = nn.Linear(TOKEN_DIM, 1)
        self.encoder = _mlp(ENCODER_DIMS, latent_dim)
        self.decoder = _mlp((latent_dim, *DECODER_DIMS), n_features)
        self.defect_head = nn.Linear(latent_dim, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 30) float32 -> latent (n, 12) and attention weights (n, 30, 30), averaged over heads."""
        tokens = x.unsqueeze(-1) * self.token_weight + self.token_bias
        attended, weights = self.attention(tokens, tokens, tokens, need_weights=True, average_attn_weights=True)
        h = x + self.readout(attended).squeeze(-1)
        return self.encoder(h), weights

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        latent, weights = self.encode(x)
        return self.decoder(latent), latent, self.defect_head(latent).squeeze(-1), weights


def feature_attention(weights: torch.Tensor) -> torch.Tensor:
    """(n, 30, 30) query x key attention -> (n, 30): how much each feature is attended to (rows sum to 1)."""
    return weights.mean(dim=1)


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0, alpha: float = 0.75) -> torch.Tensor:
    """Binary focal loss (Lin et al., 2017): down-weights easy examples; ``alpha`` weights the positive class."""
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * (1 - p_t) ** gamma * bce).mean()
