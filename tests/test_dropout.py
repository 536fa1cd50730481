"""The CPU dropout: drop rate, scaling, gradients, reproducibility, and equivalence to nn.Dropout's contract."""

from __future__ import annotations

import pytest
import torch

from wenet_llm.models.aed.dropout import Dropout, quantized_drop_probability

N = 1_000_000


def drop_mask(p: float, shape=(N,), seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return Dropout(p).train()(torch.ones(shape)) == 0


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drop_rate_and_scale(p):
    q = quantized_drop_probability(p)
    assert abs(q - p) <= 0.5 / 65536
    torch.manual_seed(0)
    out = Dropout(p).train()(torch.ones(N))
    dropped = out == 0
    sigma = (q * (1 - q) / N) ** 0.5
    assert abs(dropped.float().mean().item() - q) < 5 * sigma
    # Kept elements carry exactly the inverse keep probability, so the expectation is unchanged.
    kept = out[~dropped]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - q)), rtol=0, atol=0)


def test_elements_sharing_a_draw_are_independent():
    # Four 16-bit uniforms come from one 64-bit draw: each lane must drop at rate p, and the drop
    # decisions of any two lanes must be independent.
    p = 0.3
    lanes = drop_mask(p).view(-1, 4)
    m = lanes.shape[0]
    for i in range(4):
        assert abs(lanes[:, i].float().mean().item() - p) < 5 * (p * (1 - p) / m) ** 0.5
        for j in range(i + 1, 4):
            both = (lanes[:, i] & lanes[:, j]).float().mean().item()
            assert abs(both - p * p) < 5 * (p * p * (1 - p * p) / m) ** 0.5, (i, j)


def test_gradient_is_the_same_mask_and_scale():
    torch.manual_seed(1)
    x = torch.randn(37, 41, requires_grad=True)  # odd element count
    out = Dropout(0.2).train()(x)
    out.sum().backward()
    expected = torch.where(out == 0, 0.0, 1 / (1 - quantized_drop_probability(0.2)))
    torch.testing.assert_close(x.grad, expected, rtol=0, atol=0)
    torch.testing.assert_close(out, x.detach() * expected, rtol=0, atol=0)


def test_seeded_runs_repeat_and_consecutive_calls_differ():
    assert torch.equal(drop_mask(0.1, seed=5), drop_mask(0.1, seed=5))
    torch.manual_seed(5)
    layer = Dropout(0.1).train()
    assert not torch.equal(layer(torch.ones(1000)) == 0, layer(torch.ones(1000)) == 0)


def test_non_contiguous_input():
    torch.manual_seed(2)
    x = torch.randn(64, 32).t()
    out = Dropout(0.5).train()(x)
    assert out.shape == x.shape
    kept = out != 0
    torch.testing.assert_close(out[kept], x[kept] * 2.0, rtol=0, atol=0)


def test_eval_zero_and_one():
    x = torch.randn(10, 10)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)
    assert repr(Dropout(0.1)) == "Dropout(p=0.1)"
