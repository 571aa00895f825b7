"""The AutoEncoder's architecture and the reference predictor (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.convert


def test_autoencoder_layer_sizes_heads_and_shapes():
    import torch

    from convert.model import AutoEncoder, SwiGLU

    ae = AutoEncoder().eval()
    swiglu = [m for m in ae.encoder if isinstance(m, SwiGLU)]
    assert [(m.proj.in_features, m.d_out) for m in swiglu] == [(30, 64), (64, 32), (32, 16)]
    assert (ae.encoder[-1].in_features, ae.encoder[-1].out_features) == (16, 12)
    dec = [m for m in ae.decoder if isinstance(m, SwiGLU)]
    assert [(m.proj.in_features, m.d_out) for m in dec] == [(12, 16), (16, 32), (32, 64)]
    assert (ae.decoder[-1].in_features, ae.decoder[-1].out_features) == (64, 30)
    assert ae.attention.num_heads == 4
    x = torch.randn(7, 30)
    with torch.no_grad():
        latent, weights = ae.encode(x)
        recon, _, logit, _ = ae(x)
    assert latent.shape == (7, 12)
    assert weights.shape == (7, 30, 30)
    assert recon.shape == (7, 30)
    assert logit.shape == (7,)
    torch.testing.assert_close(weights.sum(-1), torch.ones(7, 30))


def test_focal_loss_down_weights_easy_examples():
    import torch

    from convert.model import focal_loss

    easy = focal_loss(torch.tensor([6.0]), torch.tensor([1.0]))
    hard = focal_loss(torch.tensor([-2.0]), torch.tensor([1.0]))
    assert 0 < easy < hard / 1000


def test_reference_outputs_shapes_ranges_and_dtypes(reference, dataset_xy):
    X, _ = dataset_xy
    out = reference.predict(X[:100])
    assert out["probability"].shape == (100,)
    assert out["probability"].dtype == np.float64
    assert out["label"].shape == (100,)
    assert out["label"].dtype == np.int64
    assert out["latent"].shape == (100, 12)
    assert out["latent"].dtype == np.float32
    assert out["attention"].shape == (100, 30)
    assert out["attention"].dtype == np.float32
    assert np.all((out["probability"] >= 0) & (out["probability"] <= 1))
    np.testing.assert_allclose(out["attention"].sum(axis=1), 1.0, atol=1e-5)
    assert np.all(out["attention"] >= 0)
    np.testing.assert_array_equal(out["label"], out["probability"] >= reference.threshold)


def test_reference_batch_of_one_equals_the_row_inside_a_batch(reference, dataset_xy):
    X, _ = dataset_xy
    batch = reference.predict(X[:100])
    for i in (0, 37, 99):
        single = reference.predict(X[i : i + 1])
        for key in ("probability", "label", "latent", "attention"):
            np.testing.assert_allclose(single[key][0], batch[key][i], rtol=0, atol=1e-6, err_msg=key)


def test_reference_rejects_a_wrong_width(reference):
    with pytest.raises(ValueError, match=r"expected \(n, 30\)"):
        reference.predict(np.zeros((2, 29)))


def test_shipped_metrics_are_in_the_expected_range(reference):
    m = reference.metadata["metrics"]
    assert 0.6 <= m["f1_score"] <= 0.8
    assert 0.85 <= m["roc_auc"] <= 0.95
    assert 0.05 <= reference.threshold <= 0.95


def test_the_one_projection_gemm_gives_the_folded_queries_values_and_keys(reference):
    """x @ W + b of convert.graph's fused projection equals the per-feature affine forms, column for column: each
    column reads one feature, so the zeros in W add nothing (in float64, exactly)."""
    from convert.graph import attention_constants, projection_constants

    k = attention_constants(reference.autoencoder)
    weight, bias, widths = projection_constants(k)
    assert weight.shape == (30, sum(widths))
    assert bias.shape == (sum(widths),)
    assert np.all(np.count_nonzero(weight, axis=0) <= 1)
    x = np.random.default_rng(1).standard_normal((16, 30)) * 3
    q, v, kt = np.split(x @ weight.astype(np.float64) + bias, np.cumsum(widths)[:-1], axis=1)
    qv = x[:, None, :, None] * k["qv_slope"].astype(np.float64) + k["qv_offset"].astype(np.float64)
    want_kt = x[:, None, None, :] * k["kt_slope"].astype(np.float64) + k["kt_offset"].astype(np.float64)
    np.testing.assert_array_equal(q.reshape(16, 4, 30, 4), qv[..., :4])
    np.testing.assert_array_equal(v.reshape(16, 4, 30, 1), qv[..., 4:])
    np.testing.assert_array_equal(kt.reshape(16, 4, 4, 30), want_kt)


def test_the_folded_attention_constants_compute_encode_s_attention_exactly(reference):
    """In float64, queries, keys and values affine in each reading give AutoEncoder.encode's residual and attention
    (convert/graph.py folds them; here they are evaluated with numpy against the double torch encoder)."""
    import copy

    import torch

    from convert.graph import attention_constants
    from convert.model import feature_attention

    ae = reference.autoencoder
    k = attention_constants(ae)
    x = np.random.default_rng(0).standard_normal((64, 30)) * 2
    qv = x[:, None, :, None] * k["qv_slope"].astype(np.float64) + k["qv_offset"].astype(np.float64)
    kt = x[:, None, None, :] * k["kt_slope"].astype(np.float64) + k["kt_offset"].astype(np.float64)
    scores = qv[..., :4] @ kt
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    r = (p @ qv[..., 4:]).sum(axis=(1, 3)) + k["readout_bias"]
    ae64 = copy.deepcopy(ae).double().eval()
    with torch.no_grad():
        tokens = torch.from_numpy(x).unsqueeze(-1) * ae64.token_weight + ae64.token_bias
        attended, weights = ae64.attention(tokens, tokens, tokens, need_weights=True, average_attn_weights=True)
        residual = ae64.readout(attended).squeeze(-1).numpy()
    # the constants are rounded to float32 once: agreement to float32 precision, not beyond
    np.testing.assert_allclose(r, residual, rtol=0, atol=2e-5)
    np.testing.assert_allclose(p.mean(axis=(1, 2)), feature_attention(weights).numpy(), rtol=0, atol=1e-6)
