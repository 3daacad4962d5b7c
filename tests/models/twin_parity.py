"""A zoo language model against its PyTorch twin (``benchmarks/twins``): one state dict, loaded by name into
ours, must give the same logits and every parameter's gradient of the next-token loss."""

import numpy as np

from dlbasics import models, nn


def assert_same_as_twin(name, twin, torch, dtype, tol, **options):
    torch.manual_seed(0)
    tm = twin(vocab_size=11, block_size=8, **options).to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = models.create(name, vocab_size=11, block_size=8, **options).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    idx = np.random.default_rng(0).integers(0, 11, (3, 8))
    y = np.random.default_rng(1).integers(0, 11, (3 * 8,))
    t_logits = tm(torch.tensor(idx))
    torch.nn.functional.cross_entropy(t_logits.reshape(-1, 11), torch.tensor(y)).backward()
    logits = ours(idx)
    nn.functional.cross_entropy(logits.reshape(-1, 11), y).backward()
    np.testing.assert_allclose(logits.data, t_logits.detach().numpy(), rtol=tol, atol=tol)
    grads = dict(ours.named_parameters())
    for pname, p in tm.named_parameters():  # a tied weight appears once, under its first name
        np.testing.assert_allclose(grads[pname].grad, p.grad.numpy(), rtol=tol * 10, atol=tol * 10, err_msg=pname)
