"""dlbasics.nn.functional against torch.nn.functional: linear, activations, softmax / log-softmax,
and the losses (cross_entropy, nll_loss, binary_cross_entropy_with_logits, mse_loss) in all their options."""

import pytest

from .cases import FLOAT64_CASES, FUNCTIONAL_CASES, Case, check, check_float64, check_gradcheck, gradcheckable


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=lambda c: c.id)
def test_functional_matches_torch(case: Case) -> None:
    check(case)


FUNCTIONAL_IDS = {c.id for c in FUNCTIONAL_CASES}


@pytest.mark.parametrize("case", [c for c in FLOAT64_CASES if c.id[4:] in FUNCTIONAL_IDS], ids=lambda c: c.id)
def test_functional_matches_torch_float64(case: Case) -> None:
    check_float64(case)


@pytest.mark.parametrize("case", [c for c in FUNCTIONAL_CASES if gradcheckable(c)], ids=lambda c: c.id)
def test_functional_gradients_match_finite_differences(case: Case) -> None:
    check_gradcheck(case)


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in FUNCTIONAL_CASES]
    assert len(ids) == len(set(ids))


def test_extreme_logits_are_covered() -> None:
    finite = {c.id for c in FUNCTIONAL_CASES if c.finite}
    for prefix in ("softmax_huge", "log_softmax_huge", "ce_huge"):
        assert any(i.startswith(prefix) for i in finite), prefix
