"""Siamese gallery head: one matmul equals a slow per-item reference loop; gallery travels as state."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cropray.errors import ConfigError
from cropray.models import build_model


def unit(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=1)


def reference_scores(emb, gal, labels, k):
    """The seed's per-item Python loop (float64), extended to every rule."""
    out = {"seed": [], "knn": [], "proto": []}
    gal, emb = gal.double(), emb.double()
    pos = [g for g, y in zip(gal, labels.tolist()) if y == 1]
    neg = [g for g, y in zip(gal, labels.tolist()) if y == 0]
    p_proto = F.normalize(torch.stack(pos).mean(0), dim=0)
    n_proto = F.normalize(torch.stack(neg).mean(0), dim=0)
    for e in emb:
        best = 0.0
        for g in pos:  # seed rule: max over the positive gallery of 1 / (1 + euclidean distance)
            d = math.sqrt(max(0.0, 2.0 - 2.0 * float(e @ g)))
            best = max(best, 1.0 / (1.0 + d))
        out["seed"].append(best)
        s_pos = sorted((float(e @ g) for g in pos), reverse=True)[:k]
        s_neg = sorted((float(e @ g) for g in neg), reverse=True)[:k]
        out["knn"].append(0.5 + 0.25 * (sum(s_pos) / len(s_pos) - sum(s_neg) / len(s_neg)))
        out["proto"].append(0.5 + 0.25 * (float(e @ p_proto) - float(e @ n_proto)))
    return {r: torch.tensor(v, dtype=torch.float64) for r, v in out.items()}


@pytest.mark.parametrize("k", [1, 3, 50])  # 50 > class size: k is capped per class
def test_vectorised_gallery_equals_reference_loop(k):
    m = build_model("siamese", embedding_dim=16, k=k)
    labels = torch.tensor([0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0])  # mixed order, 4 positives
    gal, emb = unit(12, 16, seed=0), unit(9, 16, seed=1)
    m.set_gallery(gal, labels)
    got = m.gallery_scores(emb)
    ref = reference_scores(emb, gal, labels, k)
    for rule in ("seed", "knn", "proto"):
        assert torch.allclose(got[rule].double(), ref[rule], atol=1e-5), rule
        assert ((got[rule] >= 0) & (got[rule] <= 1)).all()


def test_forward_uses_the_configured_rule_and_encodes_only_the_batch():
    for rule in ("seed", "knn", "proto"):
        torch.manual_seed(0)
        m = build_model("siamese", rule=rule).eval()
        x = torch.rand(5, 1, 64, 64)
        with torch.no_grad():
            m.set_gallery(m.embed(torch.rand(8, 1, 64, 64)), torch.tensor([1, 0] * 4))
            seen: list[int] = []
            h = m.encoder.register_forward_hook(
                lambda mod, inp, out, seen=seen: seen.append(inp[0].shape[0]))
            y = m(x)
            h.remove()
            assert seen == [5]  # the gallery is never re-encoded
            assert torch.equal(y, m.gallery_scores(m.embed(x))[rule])


def test_gallery_is_state_and_resizes_on_load():
    torch.manual_seed(0)
    m = build_model("siamese").eval()
    with torch.no_grad():
        m.set_gallery(m.embed(torch.rand(7, 1, 64, 64)), torch.tensor([1, 1, 0, 1, 0, 0, 0]))
    sd = m.state_dict()
    assert sd["gallery_emb"].shape == (7, 64) and sd["gallery_labels"].tolist() == [1, 1, 1, 0, 0, 0, 0]
    fresh = build_model("siamese", **m.hparams).eval()  # empty gallery
    fresh.load_state_dict(sd)
    x = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(fresh(x), m(x))
    assert fresh.state_summary() == {"gallery_size": 7, "gallery_positives": 3, "gallery_negatives": 4}


def test_gallery_needs_both_classes_and_forward_needs_a_gallery():
    m = build_model("siamese", embedding_dim=8)
    with pytest.raises(ConfigError, match="no gallery"):
        m(torch.rand(1, 1, 64, 64))
    assert "set_gallery" in m.bundle_problem()
    with pytest.raises(ConfigError, match="both classes; got 3 positive and 0 negative"):
        m.set_gallery(unit(3, 8, 0), torch.ones(3))
    with pytest.raises(ConfigError, match=r"\(G, 8\)"):
        m.set_gallery(unit(3, 4, 0), torch.tensor([0, 1, 0]))
    with pytest.raises(ConfigError, match="0 or 1"):
        m.set_gallery(unit(3, 8, 0), torch.tensor([0, 2, 1]))
