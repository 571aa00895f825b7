"""The AutoEncoder: feature tokenizer + 4-head self-attention + SwiGLU MLP encoder, mirrored decoder.

Shapes (n = batch):

- input ``x``: (n, 30) float32, standard-scaled readings;
- each feature becomes a token: ``token_i = x_i * W_i + b_i`` (30 tokens of width ``TOKEN_DIM``);
- ``nn.MultiheadAttention`` (4 heads) over the 30 tokens gives attended tokens and a (n, 30, 30) weight matrix
  (averaged over heads; row q says how much query feature q attends to each key feature);
- a linear read-out turns each attended token back into one number, added to ``x`` (residual): (n, 30);
- encoder MLP 30 -> 64 -> 32 -> 16 (SwiGLU) -> 12 (linear): the latent;
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
DECODER_DIMS = (LATENT_DIM, 16, 32, 64)


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
        self.decoder = _mlp(DECODER_DIMS, n_features)
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


class EncoderForExport(nn.Module):
    """The serving half of the AutoEncoder, rewritten for a small, fast ONNX graph: same function, fewer ops.

    scaled features (n, 30) -> (latent (n, 12), per-feature attention (n, 30)).

    - tokens are computed exactly as ``encode`` does (``x_i * W_i + b_i``), once as (30, 16) and once transposed,
      so that queries come out heads-first (n, 4, 30, 4) and keys as K^T (n, 4, 4, 30): no Transpose nodes;
      the 1/sqrt(d_head) = 1/2 query scale is folded into the query weights (exact, a power of two);
    - ``P = softmax(Q @ K^T)`` (n, 4, 30, 30); attention = ``P`` averaged over heads and queries;
    - the value path, the output projection and the read-out are linear, so they collapse to one number per
      (head, key): ``readout(MHA(tokens))[n,i] = sum_h,j P[n,h,i,j] * (T[n,j] . g_h + beta_h) + c``, with ``c``
      folded into the first encoder layer's bias.

    ``AutoEncoder.encode`` stays the definition; the tests and the parity certificate hold this rewrite to it.
    """

    def __init__(self, ae: AutoEncoder) -> None:
        super().__init__()
        with torch.no_grad():
            mha = ae.attention
            d, h = TOKEN_DIM, N_HEADS
            dh = d // h
            w_in, b_in = mha.in_proj_weight, mha.in_proj_bias
            wq, wk, wv = w_in[:d], w_in[d : 2 * d], w_in[2 * d :]
            bq, bk, bv = b_in[:d], b_in[d : 2 * d], b_in[2 * d :]
            scale = 1.0 / dh**0.5
            wq_h = (wq.T * scale).reshape(d, h, dh).permute(1, 0, 2)  # (h, d, dh)
            bq_h = (bq * scale).reshape(h, 1, dh)
            wk_h = wk.reshape(h, dh, d)  # (h, dh, d): K^T = wk_h @ T^T
            bk_h = bk.reshape(h, dh, 1)
            w_r = ae.readout.weight.double().reshape(d)
            u = (mha.out_proj.weight.double().T @ w_r).reshape(h, dh)  # value dims -> read-out, per head
            g = torch.einsum("hde,hd->he", wv.double().reshape(h, dh, d), u).unsqueeze(-1)  # (h, d, 1)
            beta = (bv.double().reshape(h, dh) * u).sum(-1).reshape(h, 1, 1)
            c = float(mha.out_proj.bias.double() @ w_r + ae.readout.bias.double())
            first = ae.encoder[0].proj
            b_first = first.bias.double() + c * first.weight.double().sum(dim=1)
            # A 17th token channel that is exactly 1 carries the projection biases into the MatMuls: three
            # fewer Add nodes, the bias summed inside the dot product instead of after it.
            zeros, ones = torch.zeros(N_FEATURES, 1), torch.ones(N_FEATURES, 1)
            tok_w = torch.cat([ae.token_weight, zeros], dim=1)  # (30, d + 1)
            tok_b = torch.cat([ae.token_bias, ones], dim=1)
            buffers = {
                "tok_w": tok_w,
                "tok_b": tok_b,
                "tok_w_t": tok_w.T,
                "tok_b_t": tok_b.T,
                "wq_h": torch.cat([wq_h, bq_h], dim=1),  # (h, d + 1, dh)
                "wk_h": torch.cat([wk_h, bk_h], dim=2),  # (h, dh, d + 1)
                "g": torch.cat([g, beta], dim=1),  # (h, d + 1, 1)
            }
        for name, value in buffers.items():
            self.register_buffer(name, value.detach().float().contiguous())
        self.first = nn.Linear(first.in_features, first.out_features)
        self.first.weight = nn.Parameter(first.weight.detach().clone())
        self.first.bias = nn.Parameter(b_first.float())
        self.d_first = ae.encoder[0].d_out
        self.rest = nn.Sequential(*list(ae.encoder)[1:])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        tokens = x.reshape(n, 1, N_FEATURES, 1) * self.tok_w + self.tok_b  # (n, 1, 30, d + 1), last channel 1
        tokens_t = x.reshape(n, 1, 1, N_FEATURES) * self.tok_w_t + self.tok_b_t  # (n, 1, d + 1, 30)
        q = tokens @ self.wq_h  # (n, h, 30, dh)
        k_t = self.wk_h @ tokens_t  # (n, h, dh, 30)
        p = torch.softmax(q @ k_t, dim=-1)  # (n, h, 30, 30)
        v = tokens @ self.g  # (n, h, 30, 1)
        r = (p @ v).sum(dim=(1, 3))  # (n, 30)
        z = self.first(x + r)
        hidden = F.silu(z[:, : self.d_first]) * z[:, self.d_first :]
        return self.rest(hidden), p.mean(dim=(1, 2))


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0, alpha: float = 0.75) -> torch.Tensor:
    """Binary focal loss (Lin et al., 2017): down-weights easy examples; ``alpha`` weights the positive class."""
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * (1 - p_t) ** gamma * bce).mean()
