"Integration tests of animepop.split on the real corpus: whole clusters per split, fractions near the targets."
import pandas as pd
import pytest

from animepop.corpus import load_corpus
from animepop.split import assign_splits, cluster_edges, load_split


@pytest.fixture(scope="module")
def corpus(shared_data): return load_corpus(data=shared_data)


@pytest.fixture(scope="module")
def split(corpus): return assign_splits(corpus, seed=42)


def test_no_cluster_across_splits(split, corpus):
    assert split.mal_id.is_unique and set(split.mal_id) == set(corpus.anime.mal_id)
    assert split.groupby("cluster").split.nunique().max() == 1


def test_fractions_close_to_targets(split):
    frac = split.split.value_counts(normalize=True)
    assert abs(frac["test"] - 0.185) < 0.01
    assert abs(frac["val"] - 0.815 * 0.15) < 0.01


def test_linked_anime_share_a_split(split, corpus):
    where = split.set_index("mal_id").split
    edges = pd.DataFrame(cluster_edges(corpus), columns=["a", "b"])
    assert len(edges) > 1_000
    assert (where[edges.a].to_numpy() == where[edges.b].to_numpy()).all()
    # franchise example: Cowboy Bebop (1) and its film (5); Death Note's characters (1535) share one split too
    assert where[1] == where[5]


def test_seeded_and_cached(split, corpus, tmp_path):
    assert assign_splits(corpus, seed=42).equals(split)
    cached = load_split(corpus=corpus, out=tmp_path)
    pd.testing.assert_frame_equal(cached, load_split(corpus=corpus, out=tmp_path))
    assert (tmp_path/"split_seed42.csv").exists()
