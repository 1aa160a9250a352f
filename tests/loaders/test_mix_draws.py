"""mix_samples draws components exactly as numpy's Generator.choice(n, p=ratios) would."""

import numpy as np
import pytest

from loaders.stream import mix_samples


@pytest.mark.parametrize("ratios", [[2.0, 1.0], [0.1, 0.3, 0.6], [1, 1, 1, 1, 5], [1e-9, 1.0]])
def test_same_draws_as_numpy_choice(ratios):
    p = np.asarray(ratios, float) / np.sum(ratios)
    ref = np.random.default_rng(3)
    want = [int(ref.choice(len(p), p=p)) for _ in range(5000)]
    mixed = mix_samples([iter(range(10**6)) for _ in ratios], ratios, np.random.default_rng(3))
    assert [next(mixed)[0] for _ in range(5000)] == want


def test_bad_ratios_are_refused():
    with pytest.raises(ValueError):
        next(mix_samples([iter([1]), iter([2])], [2.0, -1.0], np.random.default_rng(0)))
