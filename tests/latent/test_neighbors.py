import numpy as np
import pytest

from astrounsup.latent import SimilaritySearch


@pytest.fixture
def latents():
    return np.random.default_rng(0).normal(size=(200, 6))


def test_matches_brute_force(latents):
    search = SimilaritySearch(n_neighbors=5).fit(latents)
    q = latents[:4] + 0.01
    dist, idx = search.kneighbors(q)
    ref = np.linalg.norm(q[:, None] - latents[None], axis=-1)
    np.testing.assert_array_equal(idx, np.argsort(ref, axis=1)[:, :5])
    np.testing.assert_allclose(dist, np.sort(ref, axis=1)[:, :5])


def test_query_by_id_leaves_the_object_out(latents):
    ids = np.array([f"obj{i:03d}" for i in range(200)])
    search = SimilaritySearch(n_neighbors=4).fit(latents, ids=ids)
    t = search.query_ids(["obj010", "obj150"])
    assert len(t) == 8
    assert list(t["rank"]) == [1, 2, 3, 4, 1, 2, 3, 4]
    assert "obj010" not in list(t["neighbor_id"][:4])
    ref = np.linalg.norm(latents - latents[10], axis=1)
    ref[10] = np.inf
    np.testing.assert_array_equal(t["neighbor_row"][:4], np.argsort(ref)[:4])
    np.testing.assert_array_equal(t["neighbor_id"][:4], ids[np.argsort(ref)[:4]])


def test_exact_duplicates_still_leave_the_object_out(latents):
    x = np.vstack([latents, latents[:1]])
    search = SimilaritySearch(n_neighbors=2).fit(x)
    t = search.query_ids([0])
    assert 0 not in list(t["neighbor_row"])
    assert t["neighbor_row"][0] == 200
    assert t["distance"][0] == 0.0


def test_cosine_orders_by_angle(latents):
    search = SimilaritySearch(n_neighbors=5, metric="cosine").fit(latents * 7.0)
    q = latents[:1] * 0.1
    _, idx = search.kneighbors(q)
    unit = latents / np.linalg.norm(latents, axis=1, keepdims=True)
    cos = unit @ unit[0]
    np.testing.assert_array_equal(idx[0], np.argsort(-cos)[:5])


@pytest.mark.parametrize(
    ("fit_kwargs", "match"),
    [({"ids": np.zeros(200)}, "ids must be unique"), ({"ids": np.arange(3)}, "one entry per row")],
)
def test_bad_ids(latents, fit_kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimilaritySearch().fit(latents, **fit_kwargs)


def test_unknown_id_and_too_many_neighbours(latents):
    search = SimilaritySearch().fit(latents)
    with pytest.raises(KeyError, match=r"ids not in the index: \[999\]"):
        search.query_ids([999])
    with pytest.raises(ValueError, match="n_neighbors=500 exceeds the 200 indexed objects"):
        search.kneighbors(latents[:1], n_neighbors=500)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("standardize", [False, True])
def test_the_faiss_backend_finds_the_same_neighbours(latents, metric, standardize):
    pytest.importorskip("faiss", reason="faiss (the scale extra) is not installed")
    ids = np.array([f"obj{i:03d}" for i in range(200)])
    kwargs = {"n_neighbors": 6, "metric": metric, "standardize": standardize}
    ref = SimilaritySearch(**kwargs, algorithm="brute").fit(latents, ids=ids)
    fast = SimilaritySearch(**kwargs, backend="faiss").fit(latents, ids=ids)
    q = latents[:20] + 0.05
    d_ref, i_ref = ref.kneighbors(q)
    d_fast, i_fast = fast.kneighbors(q)
    np.testing.assert_array_equal(i_fast, i_ref)
    np.testing.assert_allclose(d_fast, d_ref, rtol=1e-5, atol=1e-5)  # float32
    t_ref, t_fast = ref.query_ids(ids[:10]), fast.query_ids(ids[:10])
    np.testing.assert_array_equal(t_fast["neighbor_id"], t_ref["neighbor_id"])
    assert not np.any(t_fast["neighbor_id"].reshape(10, 6) == ids[:10, None])


def test_the_faiss_backend_without_faiss_says_how_to_install_it(latents, without_faiss):
    with pytest.raises(
        ValueError, match=r"backend 'faiss' needs the faiss package.*astrounsup\[scale\]"
    ):
        SimilaritySearch(backend="faiss").fit(latents)
    with pytest.raises(ValueError, match=r"backend must be one of \['sklearn', 'faiss'\]"):
        SimilaritySearch(backend="annoy").fit(latents)


def _mixture(n, d, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (10, d))
    return (centres[rng.integers(0, 10, n)] + rng.normal(size=(n, d))).astype(np.float32)


def _recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])


class TestIVFPQ:
    def test_auto_n_probe_reaches_the_target_recall_on_new_queries(self):
        pytest.importorskip("faiss", reason="faiss (the scale extra) is not installed")
        z = _mixture(20_000, 16, 0)
        search = SimilaritySearch(n_neighbors=10, backend="faiss", index="ivfpq").fit(z)
        assert search.recall_ >= 0.95
        assert 1 <= search.n_probe_ <= 141  # sqrt(20000) lists
        q = _mixture(300, 16, 1)  # other objects of the same survey
        _, exact = SimilaritySearch(n_neighbors=10, algorithm="brute").fit(z).kneighbors(q)
        _, found = search.kneighbors(q)
        assert _recall(found, exact) >= 0.93  # measured on queries it was not tuned on

    def test_a_fixed_n_probe_and_refined_distances_are_exact(self):
        pytest.importorskip("faiss", reason="faiss (the scale extra) is not installed")
        z = _mixture(5_000, 8, 2)
        search = SimilaritySearch(n_neighbors=5, backend="faiss", index="ivfpq", n_lists=70,
                                  n_probe=70).fit(z)  # fmt: skip
        assert search.n_probe_ == 70
        d, i = search.kneighbors(z[:50] + 0.01)
        np.testing.assert_allclose(d, np.linalg.norm(z[i] - (z[:50, None] + 0.01), axis=2),
                                   rtol=1e-4, atol=1e-4)  # fmt: skip
        ids = np.arange(5_000) + 1000
        table = search.fit(z, ids=ids).query_ids(ids[:3])
        assert len(table) == 15
        assert not set(table["neighbor_id"]) & set(ids[:3].tolist())

    def test_without_refinement_a_low_recall_is_said(self):
        pytest.importorskip("faiss", reason="faiss (the scale extra) is not installed")
        z = _mixture(5_000, 32, 3)
        with pytest.warns(UserWarning, match=r"IVF-PQ reaches recall@10 0\.\d+, below"):
            SimilaritySearch(backend="faiss", index="ivfpq", refine=None, n_subquantizers=2,
                             target_recall=0.999).fit(z)  # fmt: skip

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"index": "ivfpq"}, r"index='ivfpq' is a faiss index; it needs backend='faiss'"),
            ({"backend": "faiss", "index": "hnsw"}, r"index must be one of \['flat', 'ivfpq'\]"),
            ({"backend": "faiss", "n_probe": 0}, r"n_probe must be an integer >= 1"),
            ({"backend": "faiss", "refine": 0.5}, r"refine must be a number >= 1 or None"),
            ({"backend": "faiss", "target_recall": 1.5}, r"target_recall must be in \(0, 1\]"),
            ({"backend": "faiss", "index": "ivfpq", "n_subquantizers": 3},
             r"n_subquantizers=3 must divide the dimension 8"),
            ({"backend": "faiss", "index": "ivfpq", "n_lists": 500},
             r"n_lists=500 needs at least as many vectors; got 300"),
        ],
    )  # fmt: skip
    def test_bad_settings(self, kwargs, match):
        pytest.importorskip("faiss", reason="faiss (the scale extra) is not installed")
        with pytest.raises(ValueError, match=match):
            SimilaritySearch(**kwargs).fit(_mixture(300, 8, 4))

    def test_too_few_vectors_to_train_codes(self, latents):
        pytest.importorskip("faiss", reason="faiss (the scale extra) is not installed")
        with pytest.raises(ValueError, match=r"IVF-PQ needs at least 256 vectors .* got 200"):
            SimilaritySearch(backend="faiss", index="ivfpq").fit(latents)
