import numpy as np
import torch

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.entropy import FactorizedPrior


def trained_prior(steps: int = 150) -> tuple[FactorizedPrior, torch.Tensor]:
    """Fit a 3-channel prior to Laplacian data of different scales (a few seconds)."""
    torch.manual_seed(0)
    scales = torch.tensor([0.5, 2.0, 6.0]).view(1, 3, 1, 1)
    data = torch.distributions.Laplace(0.0, 1.0).sample((64, 3, 8, 8)) * scales
    prior = FactorizedPrior(3)
    opt = torch.optim.Adam(prior.parameters(), lr=2e-2)
    for _ in range(steps):
        _, bits = prior(data, training=True)
        opt.zero_grad()
        bits.mean().backward()
        opt.step()
    return prior.eval(), data


def test_likelihoods_are_a_distribution_over_integers():
    prior, _ = trained_prior(20)
    grid = torch.arange(-300, 301, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, 1, 1)
    total = prior.likelihood(grid).sum(dim=0).flatten()
    torch.testing.assert_close(total, torch.ones(3), atol=1e-3, rtol=0)


def test_learned_widths_follow_the_data_and_tables_code_it():
    prior, data = trained_prior()
    y = torch.round(data)
    with torch.no_grad():
        est = -torch.log2(prior.likelihood(y)).sum(dim=(0, 2, 3))  # bits per channel
    assert est[0] < est[1] < est[2]
    tables = prior.export_tables()
    assert tables.num_tables == 3
    assert tables.lengths[0] < tables.lengths[2]
    symbols = y.to(torch.int64).numpy()
    indexes = np.broadcast_to(np.arange(3).reshape(1, 3, 1, 1), symbols.shape).reshape(-1)
    payload = encode_symbols(symbols.reshape(-1), indexes, tables)
    np.testing.assert_array_equal(decode_symbols(payload, indexes, tables), symbols.reshape(-1))
    # the integer tables cost at most 1% more than the float model's own estimate
    assert 8 * len(payload) <= 1.01 * float(est.sum()) + 64


def test_training_uses_noise_and_eval_rounds():
    prior = FactorizedPrior(2)
    y = torch.full((1, 2, 4, 4), 0.3)
    y_noisy, _ = prior(y, training=True)
    assert not torch.equal(y_noisy, torch.round(y_noisy))
    y_round, bits = prior(y, training=False)
    assert torch.equal(y_round, torch.zeros_like(y))
    assert bits.shape == (1,) and bits.item() > 0


def test_eval_rounds_to_the_nearest_integer_and_bits_are_those_of_the_rounded_values():
    """Contract (docstring, Balle et al. 2018): in eval mode y_tilde = round(y), the NEAREST
    integer, not floor/ceil/truncation; and the bits are -log2 of the likelihood at round(y)."""
    prior = FactorizedPrior(1).eval()
    y = torch.tensor([0.7, -0.6, -0.3, 0.3, 1.49, -1.51, 2.2, -2.8, 3.0]).view(1, 1, 3, 3)
    expected = torch.tensor([1.0, -1.0, 0.0, 0.0, 1.0, -2.0, 2.0, -3.0, 3.0]).view(1, 1, 3, 3)
    y_hat, bits = prior(y)  # the module is in eval mode: training defaults to False
    assert torch.equal(y_hat, expected)
    with torch.no_grad():
        ref = -torch.log2(prior.likelihood(expected)).sum()
    torch.testing.assert_close(bits, ref.view(1))
