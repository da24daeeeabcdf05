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


def test_the_faiss_backend_without_faiss_says_how_to_install_it(latents, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(
        ValueError, match=r"backend 'faiss' needs the faiss package.*astrounsup\[scale\]"
    ):
        SimilaritySearch(backend="faiss").fit(latents)
    with pytest.raises(ValueError, match=r"backend must be one of \['sklearn', 'faiss'\]"):
        SimilaritySearch(backend="annoy").fit(latents)
