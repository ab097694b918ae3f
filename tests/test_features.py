"Integration tests of the encoders and the embedding cache on small slices of the real corpus."
from unittest.mock import patch

import numpy as np
import pytest

from animepop import features
from animepop.corpus import load_corpus
from animepop.features import encode, encode_pooled


@pytest.fixture(scope="module")
def corpus(shared_data): return load_corpus()


def test_minilm_on_real_synopses_and_cache_reuse(corpus, tmp_path):
    texts = corpus.anime.synopsis.head(6).tolist()
    X = encode("minilm", texts, cache_dir=tmp_path, progress=False)
    assert X.shape == (6, 384) and np.isfinite(X).all()
    with patch.object(features, "load_encoder", side_effect=AssertionError("the cache should answer")):
        np.testing.assert_allclose(encode("minilm", texts, cache_dir=tmp_path, progress=False), X)
    first = encode("minilm", texts, cache_dir=tmp_path, progress=False, pooling="first")
    assert not np.allclose(first, X)  # a separate cache entry per pooling


def test_effnet_on_real_portraits(corpus, tmp_path):
    chars = corpus.characters.dropna(subset=["portrait"])
    per_anime = chars.groupby("mal_id").portrait.agg(list).head(4).tolist()
    pooled = encode_pooled("effnet-lite0", per_anime, cache_dir=tmp_path, progress=False)
    pasted = encode("effnet-lite0", per_anime, cache_dir=tmp_path, progress=False, pooling="channel0")
    assert pooled.shape == (4, 1280) and pasted.shape == (4, 49)
    assert np.isfinite(pooled).all() and pooled.std() > 0


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(KeyError, match="minilm"): encode("word2vec", ["x"])
    with pytest.raises(FileNotFoundError, match="portrait not found"):
        encode("effnet-lite0", [str(tmp_path/"missing.jpg")], cache_dir=tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="huggingface-cli download"):
        encode("gpt2", ["x"], path=str(tmp_path/"no-gpt2"), cache=False)
