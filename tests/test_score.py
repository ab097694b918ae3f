"Tests of animepop.score: the weighted score's limits and the label scaler, and W against MAL on the real data."
import numpy as np
import pytest

from animepop.corpus import load_corpus
from animepop.score import MinMaxLabelScaler, label_agreement, weighted_score


def test_weighted_score_limits():
    assert weighted_score(9.5, 0) == pytest.approx(6.605)
    assert weighted_score(9.5, 10**12) == pytest.approx(9.5)
    S, v = np.array([5.0, 8.0]), np.array([10, 10_000])
    W = weighted_score(S, v)
    assert ((W - S) * (6.605 - S) >= 0).all()   # W always lies between S and C


def test_scaler_fitted_on_train_only():
    train, test = np.array([3.0, 5.0, 9.0]), np.array([2.0, 9.5])
    sc = MinMaxLabelScaler().fit(train)
    z = sc.transform(test)
    assert z[0] < 0 and z[1] > 1                       # no clipping, no refit on the test labels
    np.testing.assert_allclose(sc.inverse_transform(z), test, rtol=0, atol=1e-12)


def test_w_tracks_mal_score(shared_data):
    a = load_corpus(data=shared_data).anime
    t = label_agreement(a, ms=(50,))
    assert t.anime.item() > 5_000 and t.pearson.item() > 0.9
