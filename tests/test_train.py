"Integration tests of training: the paper profile's end-to-end path on tiny random encoders and real corpus rows."
import numpy as np
import pytest

from animepop.config import PaperHyperparams
from animepop.corpus import load_corpus
from animepop.experiments import MODES, quick_slice, run_all
from animepop.features import save_tiny_paper_encoders
from animepop.split import load_split


@pytest.fixture(scope="module")
def small(shared_data):
    c = load_corpus()
    return quick_slice(c.anime, c.characters, n=30, n_chars=20, seed=1), c.characters, load_split()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_paper_profile_end_to_end_on_tiny_encoders(small, tmp_path, device):
    "GPT-2 / ResNet (tiny, random) fine-tuned inside every experiment, both modes, through the same code as the cpu profile."
    anime, chars, split = small
    paths = save_tiny_paper_encoders(tmp_path)
    hp = PaperHyperparams(synopsis_max_tokens=16, description_max_tokens=16)
    rows, curves, _ = run_all(anime, chars, split, "paper", hp=hp, epochs=1, benchmark_epochs=1, n_boot=20,
                              device=device, paths=paths, progress=False)
    assert set(rows["mode"]) == set(MODES)
    assert len(curves) == 2*5
    assert np.isfinite(rows["MSE"]).all()


def test_unknown_profile_is_a_clear_error(small):
    anime, chars, split = small
    with pytest.raises(ValueError, match="profile"):
        run_all(anime, chars, split, "tpu")
