"""The latent-analysis objects honour scikit-learn's estimator contract."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from astrounsup.latent import AnomalyScorer, LatentClusterer, Reducer, SimilaritySearch
from astrounsup.stars import MainSequence

ESTIMATORS = [
    LatentClusterer("kmeans", n_clusters=3, n_init=1, random_state=0),
    LatentClusterer("minibatch-kmeans", n_clusters=3, n_init=1, random_state=0),
    LatentClusterer("gmm", n_clusters=3, n_init=1, random_state=0),
    LatentClusterer("bayes-gmm", n_clusters=3, n_init=1, random_state=0),
    LatentClusterer("hdbscan", min_cluster_size=5),
    LatentClusterer("kmeans", n_clusters=3, n_init=1, reduce="pca", n_components=2),
    Reducer("pca", n_components=1, random_state=0),
    AnomalyScorer("iforest", n_estimators=20, random_state=0),
    AnomalyScorer("lof", n_neighbors=5),
    AnomalyScorer("knn", n_neighbors=5),
    SimilaritySearch(n_neighbors=3),
    # Wide bands: the checks feed unit-variance noise, in which the default 0.38/0.75 mag
    # bands would find too few members to call anything a sequence (and refuse).
    MainSequence(n_knots=4, n_iter=2, above=10.0, below=10.0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_contract(estimator, check):
    check(estimator)
