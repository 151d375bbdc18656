"""ClassCounts and the cross-entropies of a constant prediction."""

import numpy as np
import pytest
from scipy import stats

from keras_biasinit.stats import ClassCounts
from keras_biasinit.stats import binary_cross_entropy
from keras_biasinit.stats import cross_entropy


def test_ids_match_bincount(rng):
    ids = rng.integers(0, 5, size=200)
    counts = ClassCounts().update_ids(ids)
    np.testing.assert_array_equal(counts.counts, np.bincount(ids))
    assert counts.rows == 200 and counts.weight == 200.0


def test_ids_shapes_and_dtypes(rng):
    ids = rng.integers(0, 4, size=50)
    expected = np.bincount(ids, minlength=4)
    for labels in (ids[:, None], ids.astype(np.uint8), ids.astype(np.float32),
                   ids.astype(np.int16)[:, None]):
        counts = ClassCounts(num_classes=4).update_ids(labels)
        np.testing.assert_array_equal(counts.counts, expected)
    bools = ClassCounts().update_ids(np.array([True, False, True]))
    assert bools.counts.tolist() == [1.0, 2.0]


def test_weighted_ids(rng):
    ids, w = rng.integers(0, 3, size=40), rng.random(40)
    counts = ClassCounts().update_ids(ids, w)
    np.testing.assert_allclose(counts.counts, [w[ids == k].sum() for k in range(3)])
    assert counts.rows == 40
    np.testing.assert_allclose(counts.weight, w.sum())


def test_num_classes_keeps_missing_classes():
    counts = ClassCounts(num_classes=4).update_ids(np.array([0, 0, 2]))
    assert counts.counts.tolist() == [2.0, 0.0, 1.0, 0.0]


def test_huge_inferred_class_id_is_refused_not_allocated():
    from keras_biasinit.stats.class_counts import MAX_INFERRED_CLASSES

    with pytest.raises(ValueError, match="Pass `num_classes=` if it is right"):
        ClassCounts().update_ids(np.array([0, 1_000_000_000]))
    # Just under the bound is still counted.
    counts = ClassCounts().update_ids(np.array([MAX_INFERRED_CLASSES - 1]))
    assert counts.counts.shape == (MAX_INFERRED_CLASSES,)


def test_batches_grow_and_merge(rng):
    ids = rng.integers(0, 6, size=90)
    streamed = ClassCounts()
    for part in (ids[ids < 2], ids[ids >= 2][:10], ids[ids >= 2][10:]):
        streamed.update_ids(part)  # the width grows as new ids appear
    np.testing.assert_array_equal(streamed.counts, np.bincount(ids))
    left = ClassCounts().update_ids(ids[:30])
    right = ClassCounts().update_ids(ids[30:])
    merged = ClassCounts().merge(right).merge(left)
    np.testing.assert_array_equal(merged.counts, np.bincount(ids))
    assert merged.rows == 90 and merged.weight == 90.0
    # Merging does not alias the other state's array.
    right.counts[0] += 100
    np.testing.assert_array_equal(merged.counts, np.bincount(ids))


def test_label_vectors_one_hot_soft_and_weighted(rng):
    soft = rng.dirichlet(np.ones(3), size=25)
    w = rng.random(25)
    counts = ClassCounts(num_classes=3).update_vectors(soft, w)
    np.testing.assert_allclose(counts.counts, (soft * w[:, None]).sum(axis=0))
    one_hot = np.eye(3)[[0, 2, 2, 1]]
    assert ClassCounts().update_vectors(one_hot).counts.tolist() == [1.0, 1.0, 2.0]
    binary = ClassCounts().update_vectors(np.array([0.0, 1.0, 1.0]))
    assert binary.counts.tolist() == [2.0]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda c: c.update_ids(np.array([0, 3])), r"class id 3, outside \[0, 3\)"),
        (lambda c: c.update_ids(np.array([-1, 0])), r"class id -1"),
        (lambda c: c.update_ids(np.array([0.5, 1.0])), r"whole numbers.*soft labels"),
        (lambda c: c.update_ids(np.array([0.0, np.nan])), r"NaN or inf"),
        (lambda c: c.update_ids(np.zeros((2, 2), int)), r"shape \(n,\) or \(n, 1\)"),
        (lambda c: c.update_vectors(np.array([[0.5, 1.5, 0.0]])), r"in \[0, 1\]"),
        (lambda c: c.update_vectors(np.array([[np.inf, 0, 0]])), r"NaN or inf"),
        (lambda c: c.update_vectors(np.eye(4)), r"4 columns but num_classes=3"),
        (lambda c: c.update_ids(np.array([0, 1]), np.array([1.0])), r"2 rows"),
        (lambda c: c.update_ids(np.array([0, 1]), np.array([1.0, -1])),
         r"non-negative"),
    ],
)
def test_bad_labels(call, match):
    with pytest.raises(ValueError, match=match):
        call(ClassCounts(num_classes=3))


@pytest.mark.parametrize("num_classes", [0, -2, 2.5, True, "3"])
def test_bad_num_classes(num_classes):
    with pytest.raises((ValueError, TypeError), match=r"num_classes"):
        ClassCounts(num_classes)


def test_cross_entropy_is_scipy_entropy(rng):
    freq = rng.dirichlet(np.ones(5))
    assert cross_entropy(freq, freq) == pytest.approx(stats.entropy(freq), rel=1e-12)
    q = rng.dirichlet(np.ones(5))
    expected = stats.entropy(freq) + stats.entropy(freq, q)  # H(p) + KL(p||q)
    assert cross_entropy(freq, q) == pytest.approx(expected, rel=1e-12)
    # 0 * log 0 = 0: a class that never occurs costs nothing.
    assert cross_entropy([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == pytest.approx(np.log(2))


def test_binary_cross_entropy_matches_formula(rng):
    t, q = rng.random(6), rng.random(6)
    expected = -(t * np.log(q) + (1 - t) * np.log(1 - q))
    np.testing.assert_allclose(binary_cross_entropy(t, q), expected, rtol=1e-12)
    p = rng.random(4)
    np.testing.assert_allclose(
        binary_cross_entropy(p, p),
        [stats.entropy([v, 1 - v]) for v in p], rtol=1e-12,
    )
    np.testing.assert_array_equal(binary_cross_entropy([0.0, 1.0], [0.0, 1.0]), [0, 0])


def test_ids_and_vectors_do_not_mix_and_widths_do_not_change():
    with pytest.raises(ValueError, match=r"class ids and others label vectors"):
        ClassCounts().update_ids(np.array([0, 1])).update_vectors(np.eye(2))
    with pytest.raises(ValueError, match=r"class ids and others label vectors"):
        ClassCounts().update_vectors(np.eye(2)).merge(
            ClassCounts().update_ids(np.array([1])))
    with pytest.raises(ValueError, match=r"3 columns in this batch but 2 before"):
        ClassCounts().update_vectors(np.eye(2)).update_vectors(np.eye(3))
    merged = ClassCounts().update_vectors(np.eye(2)).merge(
        ClassCounts().update_vectors(np.eye(2)[[1]]))
    assert merged.counts.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, bool])
@pytest.mark.parametrize("weighted", [False, True])
def test_label_vectors_match_numpy_in_float64(rng, dtype, weighted):
    if dtype in (np.int32, bool):
        y = (rng.random((300, 7)) < 0.4).astype(dtype)
    else:  # soft labels: a float32 sum would round them
        y = rng.random((300, 7)).astype(dtype)
    w = rng.random(300) if weighted else None
    before = y.copy()
    counts = ClassCounts()
    for idx in np.split(np.arange(300), [1, 100, 250]):
        counts.update_vectors(y[idx], None if w is None else w[idx])
    np.testing.assert_array_equal(y, before)
    w64 = np.ones(300) if w is None else w
    expected = (w64[:, None] * y.astype(np.float64)).sum(axis=0)
    np.testing.assert_allclose(counts.counts, expected, rtol=1e-14)
    assert counts.weight == pytest.approx(w64.sum(), rel=1e-14)
    assert counts.rows == 300


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "bad, match",
    [
        (np.nan, r"contain 1 NaN or inf"),
        (np.inf, r"contain 1 NaN or inf"),
        (-np.inf, r"contain 1 NaN or inf"),
        (-1e-3, r"in \[0, 1\]"),
        (1.0 + 1e-3, r"in \[0, 1\]"),
    ],
)
def test_label_vector_checks_with_one_bad_value(rng, dtype, bad, match):
    y = (rng.random((50, 4)) < 0.5).astype(dtype)
    y[17, 2] = bad
    with pytest.raises(ValueError, match=match):
        ClassCounts().update_vectors(y)
    with pytest.raises(ValueError, match=match):  # even at weight 0
        w = np.ones(50)
        w[17] = 0.0
        ClassCounts().update_vectors(y, w)


def test_label_vectors_range_check_on_integers():
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        ClassCounts().update_vectors(np.array([[0, 2, 0]]))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        ClassCounts().update_vectors(np.array([[0, -1, 1]], np.int8))
    assert ClassCounts().update_vectors(np.zeros((0, 3))).counts.tolist() == [0, 0, 0]
