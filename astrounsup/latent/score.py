"""A score per object from a few labels: a calibrated probability that ranks without ties.

Cluster naming (:class:`astrounsup.latent.ClusterLabeler`) gives every member of a cluster
the same score. :class:`LabelScorer` scores each object on its own: an L2-regularised
logistic regression over the standardised features (the space the clusters were found in)
and, when given, one-hot cluster memberships, so the cluster naming enters as one learned
offset per cluster. Two label regimes:

``"labeled"``
    Labels of both classes for a random share of the objects (e.g. 10% vetted). The model
    is fitted on them; every object gets a probability, the labeled ones from the folds
    that did not see them (cross-fitting), and the probabilities are calibrated on those
    out-of-fold scores with a one-dimensional logistic fit (Platt scaling), so that a
    probability of 0.8 means about 80% positives.
``"positive-unlabeled"``
    Only some positives are known (e.g. a list of ~50 known lenses), nothing is known to be
    negative. Known positives are told apart from all other objects (the unlabeled, mostly
    negatives), each object scored by the folds that did not see it. Under the assumption
    that the known positives are a random draw from all positives, with a share ``c`` of
    them known, the chance that an object is known is ``c`` times its chance of being
    positive. The calibration fits that model to the out-of-fold log-odds ``t`` by maximum
    likelihood: ``P(known | t) = c * sigmoid(a * t + b)``, with ``a >= 0`` and ``c`` between
    the share of objects that are known and 1 (the non-traditional classifier of Elkan &
    Noto 2008, with the label frequency fitted with the slope rather than taken as the mean
    score of the known positives, which underestimates it wherever the classes overlap and
    drives the probabilities to 1). An unlabeled object's probability is that of being
    positive given that it is not known, ``(1 - c) q / (1 - c q)`` with
    ``q = sigmoid(a * t + b)``; a known positive's is ``q``, how the folds that did not see
    it rate it. Probabilities stay below 1 and order as the log-odds do.

The ranking score ``scores_`` is the out-of-fold log-odds: continuous, so candidates rank
without ties.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from astrounsup._estimators import check_int, check_number

__all__ = ["C_GRID", "LabelScorer"]


def _features(X, clusters, cluster_ids, mean, std):
    z = (X - mean) / std
    if cluster_ids is None:
        return z
    onehot = (np.asarray(clusters)[:, None] == cluster_ids[None, :]).astype(np.float64)
    return np.hstack([z, onehot])


class LabelScorer(BaseEstimator):
    """Per-object probability of a label of interest, from labeled members or known positives.

    Parameters
    ----------
    positive : object, optional
        The label of interest in ``y`` (``True`` for an ``is_lens`` column).
    C : float or "auto", optional
        Inverse L2 regularisation of the logistic regression, > 0; ``"auto"`` chooses it
        from :data:`C_GRID` by the cross-validated log-loss on the training rows (the
        folds below), so the regularisation follows how many labels and features there
        are.
    folds : int, optional
        Cross-fitting folds, >= 2 (fewer when a class has fewer labeled members).
    random_state : int, optional
        Seed of the fold assignment.

    Attributes
    ----------
    mode_ : str
        ``"labeled"`` or ``"positive-unlabeled"`` (see the module notes).
    scores_ : numpy.ndarray of shape (n,)
        Out-of-fold log-odds of every fitted object (labeled objects scored by folds that
        did not see them): the ranking score.
    probability_ : numpy.ndarray of shape (n,)
        Calibrated probability of every fitted object, in [0, 1].
    label_frequency_ : float
        Positive-unlabeled mode: the estimated share of positives that are known (``c`` of
        the module notes); NaN otherwise.
    C_ : float
        The regularisation used.
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (300, 4)), rng.normal(1.5, 1, (300, 4))])
    >>> y = np.repeat([False, True], 300)
    >>> labeled = rng.random(600) < 0.2
    >>> sc = LabelScorer().fit(X, y, labeled=labeled)
    >>> sc.mode_, len(np.unique(sc.scores_)) == 600
    ('labeled', True)
    >>> bool(abs(sc.probability_[~labeled].mean() - y[~labeled].mean()) < 0.05)
    True
    """

    def __init__(self, *, positive=True, C="auto", folds=5, random_state=0):
        self.positive = positive
        self.C = C
        self.folds = folds
        self.random_state = random_state

    def _check(self, X):
        name = type(self).__name__
        if not (isinstance(self.C, str) and self.C == "auto"):
            if not isinstance(self.C, str):
                check_number(name, "C", self.C, 0.0)
            if isinstance(self.C, str) or self.C <= 0:
                msg = f"{name}: C must be > 0 or 'auto'; got {self.C!r}"
                raise ValueError(msg)
        check_int(name, "folds", self.folds, 2)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or not np.isfinite(X).all():
            msg = f"{name}: X must be a finite 2-D array (n, d); got shape {X.shape}"
            raise ValueError(msg)
        return X

    def fit(self, X, y, *, labeled=None, clusters=None):
        """Fit on features ``X`` and the labels ``y`` of the ``labeled`` rows.

        Parameters
        ----------
        X : array_like of shape (n, d)
            Features, e.g. the reduced latents the clusters were found in.
        y : array_like of shape (n,)
            Labels (bool, 0/1, strings); only ``labeled`` rows are read. When every
            labeled row is positive, the positive-unlabeled mode is used.
        labeled : array_like of shape (n,), bool, optional
            Which labels are known (default: all).
        clusters : array_like of shape (n,), int, optional
            Cluster ids, used as one-hot features.

        Returns
        -------
        self
        """
        from sklearn.linear_model import LogisticRegression

        name = type(self).__name__
        X = self._check(X)
        n = len(X)
        y = np.asarray(y)
        labeled = np.ones(n, bool) if labeled is None else np.asarray(labeled, bool)
        if y.shape != (n,) or labeled.shape != (n,):
            msg = (
                f"{name}: y and labeled must have one entry per row of X ({n}); got "
                f"{y.shape} and {labeled.shape}"
            )
            raise ValueError(msg)
        target = labeled & (y == self.positive)
        n_pos, n_neg = int(target.sum()), int((labeled & ~target).sum())
        self.mode_ = "labeled" if n_neg else "positive-unlabeled"
        # Fewer folds when a class has fewer members than folds: each fold needs one.
        folds = min(self.folds, n_pos, n_neg if n_neg else n_pos)
        if folds < 2:
            msg = (
                f"{name}: scoring needs at least 2 labeled positives ({self.positive!r})"
                f"{' and 2 labeled negatives' if n_neg else ''}; got {n_pos} positive and "
                f"{n_neg} negative"
            )
            raise ValueError(msg)
        self.cluster_ids_ = None if clusters is None else np.unique(np.asarray(clusters))
        if clusters is not None and np.asarray(clusters).shape != (n,):
            msg = f"{name}: clusters must be (n,) cluster ids; got {np.asarray(clusters).shape}"
            raise ValueError(msg)
        self.mean_ = X.mean(0)
        self.std_ = np.where(X.std(0) > 0, X.std(0), 1.0)
        F = _features(X, clusters, self.cluster_ids_, self.mean_, self.std_)

        # The rows a model learns from: the labeled ones, or everything (PU).
        train = labeled if self.mode_ == "labeled" else np.ones(n, bool)
        rng = np.random.default_rng(self.random_state)
        fold = np.full(n, -1)
        for cls in (True, False):  # stratified: each fold holds a share of each class
            rows = np.nonzero(train & (target == cls))[0]
            fold[rng.permutation(rows)] = np.arange(rows.size) % folds
        self.C_ = _choose_C(F, target, train, fold, folds) if self.C == "auto" else float(self.C)

        def model():
            return LogisticRegression(C=self.C_, max_iter=2000)

        # Each training row is scored by the fold model that did not see it, every other
        # row by the mean of the fold models.
        logit = np.zeros(n)
        outside = ~train
        for k in range(folds):
            fitted = model().fit(F[train & (fold != k)], target[train & (fold != k)])
            inside = fold == k
            logit[inside] = fitted.decision_function(F[inside])
            if outside.any():
                logit[outside] += fitted.decision_function(F[outside]) / folds
        self.scores_ = logit
        self.final_ = model().fit(F[train], target[train])
        if self.mode_ == "labeled":
            platt = LogisticRegression(C=1e6, max_iter=2000)
            platt.fit(logit[labeled, None], target[labeled])
            self.platt_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
            self.label_frequency_ = float("nan")
        else:
            self.platt_ = None
            self.pu_ = _fit_label_frequency(logit, target)
            self.label_frequency_ = self.pu_[2]
        self.probability_ = self._calibrate(logit)
        if self.mode_ == "positive-unlabeled":  # the known ones: as their folds rate them
            a, b, _ = self.pu_
            self.probability_[target] = _sigmoid(a * logit[target] + b)
        self.n_features_in_ = X.shape[1]
        return self

    def _calibrate(self, logit):
        if self.platt_ is not None:
            a, b = self.platt_
            return _sigmoid(a * logit + b)
        a, b, c = self.pu_
        q = _sigmoid(a * logit + b)
        return (1.0 - c) * q / (1.0 - c * q)  # positive, given that it is not known

    def decision_function(self, X, *, clusters=None):
        """Log-odds of new objects from the model fitted on every training row, ``(n,)``."""
        check_is_fitted(self, "final_")
        X = self._check(X)
        if X.shape[1] != self.n_features_in_:
            msg = f"X has {X.shape[1]} features; fitted on {self.n_features_in_}"
            raise ValueError(msg)
        if (clusters is None) != (self.cluster_ids_ is None):
            msg = "clusters must be given to decision_function exactly when fit had them"
            raise ValueError(msg)
        F = _features(X, clusters, self.cluster_ids_, self.mean_, self.std_)
        return self.final_.decision_function(F)

    def predict_proba(self, X, *, clusters=None):
        """Calibrated probability of the positive label for new objects, ``(n,)``; in the
        positive-unlabeled mode, the probability given that the object is not known."""
        return self._calibrate(self.decision_function(X, clusters=clusters))


#: The regularisations ``C="auto"`` chooses from.
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def _choose_C(F, target, train, fold, folds):  # noqa: N802 - scikit-learn's name
    """The ``C`` of :data:`C_GRID` with the lowest mean log-loss over the folds, each
    scored by the model fitted on the others (ties: the stronger regularisation)."""
    from sklearn.linear_model import LogisticRegression

    losses = []
    for c in C_GRID:
        loss = 0.0
        for k in range(folds):
            fit, held = train & (fold != k), fold == k
            model = LogisticRegression(C=c, max_iter=2000).fit(F[fit], target[fit])
            p = np.clip(model.predict_proba(F[held])[:, 1], 1e-12, 1 - 1e-12)
            t = target[held]
            loss += -np.sum(t * np.log(p) + (~t) * np.log(1 - p))
        losses.append(loss)
    return float(C_GRID[int(np.argmin(losses))])


def _fit_label_frequency(t, known):
    """``(a, b, c)`` maximising the likelihood of ``known`` under
    ``P(known | t) = c * sigmoid(a * t + b)`` (``a >= 0``; ``c`` at least the share of
    objects that are known, at most 1), from three starts of ``c``; ``t`` is standardised
    while fitting."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    t = np.asarray(t, dtype=np.float64)
    known = np.asarray(known, dtype=bool)
    mu, sd = float(t.mean()), float(t.std()) or 1.0
    z = (t - mu) / sd
    c_min = max(known.mean(), 1e-9)

    def nll(w):
        a, b, c = w
        q = expit(a * z + b)
        rest = np.maximum(1.0 - c * q, 1e-300)
        loss = -(np.log(c) * known.sum() + log_expit(a * z[known] + b).sum())
        loss -= np.log(rest[~known]).sum()
        one = 1.0 - q  # d log q / d(a z + b) for the known
        r = c * q * (1.0 - q) / rest  # - d log(1 - c q) / d(a z + b) for the others
        grad = np.array([
            -(one[known] * z[known]).sum() + (r[~known] * z[~known]).sum(),
            -one[known].sum() + r[~known].sum(),
            -known.sum() / c + (q[~known] / rest[~known]).sum(),
        ])  # fmt: skip
        return loss, grad

    start_c = min(max(float(np.mean(expit(t[known]))), c_min), 1.0)
    best = None
    for c0 in (start_c, 0.5 * (start_c + 1.0), 0.95):
        share = min(c_min / c0, 0.5)  # the positives' share were c0 the label frequency
        b0 = float(np.log(share / (1.0 - share)))
        res = minimize(nll, [1.0, b0, c0], jac=True, method="L-BFGS-B",
                       bounds=[(0.0, 100.0), (-100.0, 100.0), (c_min, 1.0)])  # fmt: skip
        if best is None or res.fun < best.fun:
            best = res
    a, b, c = (float(v) for v in best.x)
    return a / sd, b - a * mu / sd, c


def _sigmoid(t):
    from scipy.special import expit

    return expit(np.asarray(t, dtype=np.float64))  # no overflow for large |t|
