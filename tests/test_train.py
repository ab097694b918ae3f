"Integration tests of training: the paper profile's end-to-end path on tiny random encoders and real corpus rows, in every mode."
import numpy as np
import pytest

from animepop.config import PaperHyperparams
from animepop.corpus import load_corpus
from animepop.experiments import EXPERIMENTS, MODES, TEST_SPLIT, quick_slice, run_all
from animepop.features import save_tiny_paper_encoders
from animepop.split import load_split
from animepop.train import Search


@pytest.fixture(scope="module")
def small(shared_data):
    c = load_corpus()
    return quick_slice(c.anime, c.characters, n=30, n_chars=20, seed=1), c.characters, load_split()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_paper_profile_end_to_end_on_tiny_encoders(small, tmp_path, device):
    "GPT-2 / ResNet (tiny, random) fine-tuned inside every experiment in every mode, `tuned` with its search, through the same code as the cpu profile."
    anime, chars, split = small
    paths = save_tiny_paper_encoders(tmp_path)
    hp = PaperHyperparams(synopsis_max_tokens=16, description_max_tokens=16)
    search = Search(lrs=(1e-3, 3e-3), max_epochs=3, patience=1)
    rows, curves, _ = run_all(anime, chars, split, "paper", hp=hp, epochs=1, benchmark_epochs=1, search=search, n_folds=3,
                              n_boot=20, device=device, paths=paths, progress=False)
    assert set(rows["mode"]) == set(MODES)
    assert np.isfinite(rows["MSE"]).all()
    tuned = curves[curves["mode"] == "tuned"]
    assert set(tuned.lr) == set(search.lrs)  # every learning rate of the search fine-tuned every experiment
    assert tuned.groupby(["experiment", "lr"]).size().max() <= search.max_epochs
    assert (tuned.groupby("experiment").chosen.sum() > 0).all()
    chosen = rows[(rows["mode"] == "tuned") & (rows.estimate == TEST_SPLIT) & rows.experiment.isin(EXPERIMENTS)]
    assert len(chosen) == len(EXPERIMENTS) and set(chosen.lr.astype(float)) <= set(search.lrs)
    assert rows.experiment.str.startswith("Ridge").sum() == 1
    cv = rows[rows.estimate != TEST_SPLIT]
    assert len(cv) == len(MODES)*4 and (cv.n == cv.n.iloc[0]).all()  # Full, Char, Img and the mean, over every anime with characters


def test_unknown_profile_and_mode_are_clear_errors(small):
    anime, chars, split = small
    with pytest.raises(ValueError, match="profile"):
        run_all(anime, chars, split, "tpu")
    with pytest.raises(ValueError, match="tuned"):
        run_all(anime, chars, split, "cpu", modes=("published", "best"))
