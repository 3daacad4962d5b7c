"""The Vision Transformer against its PyTorch twin (``benchmarks/twins/vit.py``): one state dict, loaded by name,
gives the same logits and every parameter's gradient; the class token's attention map is a distribution over the
patches."""

import sys
from pathlib import Path

import numpy as np
import pytest

from dlbasics import models, nn

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from twins.vit import vit as torch_vit  # noqa: E402


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 2e-4)])
def test_vit_matches_its_pytorch_twin_by_name(dtype, tol):
    options = {"patch_size": 7, "dim": 16, "depth": 2, "heads": 2, "mlp_ratio": 2.0}
    torch.manual_seed(0)
    tm = torch_vit(1, 28, 10, **options).to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = models.create("vit", in_channels=1, image_size=28, num_classes=10, **options).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 1, 28, 28)).astype(dtype)
    y = rng.integers(0, 10, 3)
    t_logits = tm(torch.tensor(x))
    torch.nn.functional.cross_entropy(t_logits, torch.tensor(y)).backward()
    logits = ours(x)
    nn.functional.cross_entropy(logits, y).backward()
    np.testing.assert_allclose(logits.data, t_logits.detach().numpy(), rtol=tol, atol=tol)
    grads = dict(ours.named_parameters())
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(grads[name].grad, p.grad.numpy(), rtol=tol * 10, atol=tol * 10, err_msg=name)


def test_cls_attention_is_a_distribution_over_the_patches():
    model = models.create("vit", in_channels=1, image_size=28, num_classes=10, dim=16, depth=2, heads=2)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    maps = model.cls_attention(x)
    assert maps.shape == (2, 4, 4) and model.training
    assert np.all(maps >= 0) and np.all(maps.sum(axis=(1, 2)) < 1)  # the rest goes to the class token itself


def test_vit_refuses_patches_that_do_not_tile_the_image():
    with pytest.raises(ValueError, match="image_size 28 is not a multiple of patch_size 5"):
        models.create("vit", in_channels=1, image_size=28, num_classes=10, patch_size=5)
