"""References shared by the entropy-model tests, written from the contracts (not from the code)."""
import torch
import torch.nn.functional as F


def exact_head_ref(conv, x: torch.Tensor, num_indexes: int) -> torch.Tensor:
    """A 3x3 integer index head (``lcodec.entropy.integer_net``) as plain int64 arithmetic: zero
    padding, integer weights round(W * 2**wf) clipped to +-(2**(wb-1) - 1), bias round(b * 2**(wf + 4)),
    then floor((acc + 2**(r-1)) / 2**r) with r = wf + 4 (input 4 fractional bits, output 0), clamped
    to [0, num_indexes - 1]. Inputs are clamped to [0, 255]."""
    wf, wmax = conv.weight_frac, 2 ** (conv.weight_bits - 1) - 1
    w = torch.round(conv.weight.detach().double() * 2.0**wf).clamp(-wmax, wmax).long()
    bias = torch.round(conv.bias.detach().double() * 2.0 ** (wf + 4)).long()
    x = x.long().clamp(0, 255)
    n, _, h, wd = x.shape
    xp = F.pad(x, (1, 1, 1, 1))
    acc = bias.view(1, -1, 1, 1).expand(n, -1, h, wd).clone()
    for dy in range(3):
        for dx in range(3):
            acc += torch.einsum("oc,bchw->bohw", w[:, :, dy, dx], xp[:, :, dy : dy + h, dx : dx + wd])
    r = wf + 4
    return torch.div(acc + 2 ** (r - 1), 2**r, rounding_mode="floor").clamp(0, num_indexes - 1)
