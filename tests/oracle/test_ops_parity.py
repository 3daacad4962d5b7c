"""dlbasics ops against PyTorch: elementwise, reductions, movement, indexing, matmul, non-contiguous inputs,
and a float64 subset. Every case runs forward and backward in both libraries (see ``cases.py``)."""

import numpy as np
import pytest

import dlbasics as dl

from .cases import FLOAT64_CASES, OPS_CASES, Case, case, check, check_float64, check_gradcheck, gradcheckable, r, run


@pytest.mark.parametrize("case", OPS_CASES, ids=lambda c: c.id)
def test_op_matches_torch(case: Case) -> None:
    check(case)


OPS_IDS = {c.id for c in OPS_CASES}


@pytest.mark.parametrize("case", [c for c in FLOAT64_CASES if c.id[4:] in OPS_IDS], ids=lambda c: c.id)
def test_op_matches_torch_float64(case: Case) -> None:
    check_float64(case)


@pytest.mark.parametrize("case", [c for c in OPS_CASES if gradcheckable(c)], ids=lambda c: c.id)
def test_op_gradients_match_finite_differences(case: Case) -> None:
    check_gradcheck(case)


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in OPS_CASES]
    assert len(ids) == len(set(ids))


# ---- the harness itself must be able to fail ----------------------------------------------------------
def test_harness_catches_a_wrong_forward() -> None:
    wrong = case("wrong_forward", lambda m, F, a: a * (2.0 if m is dl else 3.0), r(3))
    with pytest.raises(AssertionError, match="output 0"):
        check(wrong)


def test_harness_catches_a_wrong_gradient() -> None:
    # same values, but dl's gradient is cut: the forward agrees and only the gradient check can fail
    wrong = case("wrong_grad", lambda m, F, a: a.detach() * a if m is dl else a * a, r(3))
    with pytest.raises(AssertionError, match="grad of input 0"):
        check(wrong)


def test_harness_catches_a_wrong_shape_and_dtype() -> None:
    shape = case("wrong_shape", lambda m, F, a: a.sum(dim=0, keepdim=m is dl), r(2, 3))
    with pytest.raises(AssertionError, match="shape"):
        check(shape)
    dtype = case("wrong_dtype", lambda m, F, a: a.double() if m is dl else a, r(3))
    with pytest.raises(AssertionError, match="dtype"):
        check(dtype)


def test_harness_passes_non_contiguous_views_through() -> None:
    a = np.asfortranarray(r(3, 4))
    _, xs = run(case("view", lambda m, F, x: x + 0.0, a), "dl")
    assert xs[0].data is a  # not copied into C order
