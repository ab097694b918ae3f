"The networks against the paper's tables, and a short training run on real cached vectors."
import numpy as np
import pytest
import torch

from animepop.config import PaperHyperparams, seed_everything
from animepop.corpus import load_corpus
from animepop.features import encode
from animepop.models import EXPERIMENTS, PopularityNet, character_mlp, head_mlp, n_params
from animepop.score import MinMaxLabelScaler
from animepop.train import AnimeDataset, fit, make_collate, predict

PAPER_DIMS = {"synopsis": 768, "descriptions": 768, "portraits": 49}


def test_paper_widths():
    full = PopularityNet("Full", PAPER_DIMS)
    assert full.body.char[1].in_features == 817 and full.body.head[1].in_features == 1536   # Tables 4 and 6
    assert n_params(PopularityNet("Syn", PAPER_DIMS).body) == n_params(head_mlp(768, dropout=None))
    img = PopularityNet("Img", PAPER_DIMS).body
    assert [m.out_features for m in img if isinstance(m, torch.nn.Linear)] == [384, 1]
    assert n_params(img[0]) == n_params(character_mlp(49))
    assert PopularityNet("Trad", {"synopsis": 750, "descriptions": 750, "portraits": 750}).body[0].in_features == 2250


def test_published_benchmark_softmax_normalises_over_the_batch():
    net = PopularityNet("Trad", {k: 750 for k in PAPER_DIMS}, mode="published")
    out = net({k: torch.randn(16, 750) for k in PAPER_DIMS})
    assert torch.isclose(out.sum(), torch.tensor(1.0))


def test_syn_trains_on_real_synopsis_vectors(shared_data, tmp_path):
    a = load_corpus().anime.sample(96, random_state=0)
    X = encode("minilm", a.synopsis.tolist(), cache_dir=tmp_path, progress=False)
    y = MinMaxLabelScaler().fit_transform(a.score)
    tr, va = AnimeDataset({"synopsis": X[:64]}, y[:64]), AnimeDataset({"synopsis": X[64:]}, y[64:])
    seed_everything(42)
    net = PopularityNet("Syn", {"synopsis": 384})
    curve = fit(net, tr, va, PaperHyperparams(), epochs=2, device="cpu")
    assert list(curve.epoch) == [1, 2] and np.isfinite(curve.val_loss).all()
    assert predict(net, va, make_collate()).shape == (32,)


def test_tuned_training_standardises_and_keeps_the_best_epoch(shared_data, tmp_path):
    "`tuned` mode's pieces on real synopsis vectors: inputs standardised on train, early stopping, best epoch's weights."
    from animepop.train import standardize_inputs
    a = load_corpus().anime.sample(160, random_state=1)
    X = encode("minilm", a.synopsis.tolist(), cache_dir=tmp_path, progress=False)
    y = MinMaxLabelScaler().fit(a.score[:112]).transform(a.score)
    tr, va = AnimeDataset({"synopsis": X[:112]}, y[:112]), AnimeDataset({"synopsis": X[112:]}, y[112:])
    seed_everything(42)
    net = standardize_inputs(PopularityNet("Syn", {"synopsis": 384}), tr)
    z = net.vector("synopsis", torch.from_numpy(X[:112]))
    assert torch.allclose(z.mean(0), torch.zeros(384), atol=1e-4)
    curve = fit(net, tr, va, PaperHyperparams(lr=3e-3), epochs=60, shuffle=True, device="cpu", patience=3)
    best = int(curve.epoch[curve.val_loss.idxmin()])
    assert len(curve) == min(60, best + 3)
    assert np.isclose(np.mean((predict(net, va) - va.y)**2), curve.val_loss.min(), rtol=1e-5)
