"""The summary the report shows, against brute-force references."""

import numpy as np
import pytest

from astrounsup.latent import summarize_latents


@pytest.fixture(scope="module")
def latents():
    rng = np.random.default_rng(7)
    z = np.concatenate([rng.normal(0, 1, (40, 5)), rng.normal(5, 1, (40, 5))])
    cluster = np.repeat([3, 8], 40)
    return z, cluster


class TestSummarizeLatents:
    def test_against_brute_force(self, latents):
        z, cluster = latents
        rng = np.random.default_rng(1)
        lens_rank = rng.permutation(80) + 1
        anomaly_rank = rng.permutation(80) + 1
        s = summarize_latents(z, cluster=cluster, lens_rank=lens_rank, anomaly_rank=anomaly_rank,
                              cluster_nearest=4, cluster_random=2, top=7, lookalikes_of=2,
                              lookalikes=5, seed=0)  # fmt: skip
        assert s.map.shape == (80, 2)
        assert np.isfinite(s.map).all()
        for c in (3, 8):
            members = np.flatnonzero(cluster == c)
            d = ((z[members] - z[members].mean(0)) ** 2).sum(1)
            near, few = s.cluster_members[c]
            assert near == members[np.argsort(d)[:4]].tolist()
            assert len(few) == 2
            assert set(few) <= set(members) - set(near)
            assert few == sorted(few)
        assert s.lens_top == [int(i) for i in np.argsort(lens_rank)[:7]]
        assert s.anomaly_top == [int(i) for i in np.argsort(anomaly_rank)[:7]]
        chosen = s.lens_top[:2] + s.anomaly_top[:2]
        assert sorted(s.lookalikes) == sorted(set(chosen))
        for i in chosen:
            d = ((z - z[i]) ** 2).sum(1)
            d[i] = np.inf
            assert s.lookalikes[i] == np.argsort(d)[:5].tolist()

    def test_the_same_seed_gives_the_same_summary(self, latents):
        z, cluster = latents
        a = summarize_latents(z, cluster=cluster, seed=4)
        b = summarize_latents(z, cluster=cluster, seed=4)
        np.testing.assert_array_equal(a.map, b.map)
        assert a.cluster_members == b.cluster_members

    def test_without_clusters_or_rankings_only_the_map(self, latents):
        s = summarize_latents(latents[0])
        assert s.map.shape == (80, 2)
        assert (s.cluster_members, s.lens_top, s.anomaly_top, s.lookalikes) == ({}, [], [], {})

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"cluster": np.zeros(3)}, r"cluster must have shape \(80,\)"),
            ({"anomaly_rank": np.ones((80, 2))}, r"anomaly_rank must have shape \(80,\)"),
            ({"top": -1}, "top"),
            ({"map_neighbors": 0}, "map_neighbors"),
        ],
    )
    def test_bad_inputs(self, latents, kwargs, match):
        with pytest.raises(ValueError, match=match):
            summarize_latents(latents[0], **kwargs)

    def test_too_few_latents(self):
        with pytest.raises(ValueError, match=r"latents must be \(n, d\) with n >= 2"):
            summarize_latents(np.zeros((1, 3)))
