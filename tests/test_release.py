"""The authors' release (Zenodo 13835115) on a folder in exactly its layout, built from the real shared data by
`release_fixture.build_release`: the reader, the cleaning counts, the published split kept, clear errors, and the
reproduction of Tables 1, 2, 8, 9 and Figures 2, 3, 4 on it."""
import json, shutil, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from animepop.config import find_layout
from animepop.corpus import clean, load_corpus, read_sources
from animepop.split import load_split
from release_fixture import build_release, isolated_root

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def release(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    return out, build_release(shared_data, out)


def expected_parts(info: dict) -> pd.Series: return pd.Series(info["parts"])


def test_layout_is_recognised(release):
    out, _ = release
    assert find_layout(out) == ("release", out)
    assert {p.name for p in out.iterdir()} == {"Anime_train.csv", "Anime_test.csv", "Char_train.csv", "Char_test.csv", "char train", "char test"}


def test_every_planted_fault_is_dropped_and_counted(release):
    out, info = release
    corpus, report = clean(read_sources(out))
    r, f = report.set_index("step"), info["faults"]
    assert r.loc["rows of Anime_train.csv and Anime_test.csv", ["anime", "characters"]].tolist() == [info["anime"], info["links"] + 4]
    assert r.loc["drop anime rows with unreadable Score", "anime_removed"] == f["unreadable score"]
    assert r.loc["drop anime rows with unreadable Main Characters", "anime_removed"] == f["unreadable main characters"]
    assert r.loc["drop listed characters without a row in Char_train.csv / Char_test.csv", "characters_removed"] == f["no row"]
    assert r.loc["drop characters without description", "characters_removed"] == f["no description"] + f["empty description"]
    assert r.loc["drop characters without portrait", "characters_removed"] == f["no portrait"]
    assert r.loc["drop characters with unreadable portrait", "characters_removed"] == f["unreadable png"]
    assert r.loc["drop anime with synopsis under 20 words", "anime_removed"] == f["short synopsis"]
    assert report.anime.iloc[-1] == len(corpus.anime) and report.characters.iloc[-1] == len(corpus.characters)
    assert corpus.characters.role.eq("Main").all() and corpus.characters.portrait.map(lambda p: Path(p).is_file()).all()
    assert corpus.characters.groupby("char_id").mal_id.nunique().max() > 1                      # characters shared between anime


def test_published_split_is_kept_exactly(release, tmp_path):
    out, info = release
    corpus = load_corpus(data=out, out=tmp_path)
    split = load_split(corpus=corpus, out=tmp_path).set_index("mal_id")
    published = expected_parts(info).reindex(split.index)
    assert published.notna().all()
    assert split.split.eq("test").equals(published.eq("test"))                                   # the authors' test split, exactly
    assert split.split[published.eq("train")].isin(["train", "val"]).all() and split.split.eq("val").sum() > 0
    assert split[split.split != "test"].groupby("cluster").split.nunique().max() == 1             # validation: whole clusters


def copy_release(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir(): (dst/p.name).symlink_to(p) if p.is_dir() else shutil.copy(p, dst/p.name)
    return dst


@pytest.mark.parametrize("fault, message", [("column", "Char_test.csv: column 'Description' missing"),
                                            ("file", "Anime_test.csv: file missing"),
                                            ("folder", "char test/: portrait folder missing")])
def test_missing_file_or_column_stops_before_any_notebook(release, tmp_path, fault, message):
    d = copy_release(release[0], tmp_path/"broken")
    if fault == "column": pd.read_csv(d/"Char_test.csv").drop(columns="Description").to_csv(d/"Char_test.csv", index=False)
    if fault == "file": (d/"Anime_test.csv").unlink()
    if fault == "folder": (d/"char test").unlink()
    env = isolated_root(tmp_path) | {"ANIMEPOP_DATA_DIR": str(d)}                                # recognised through the variable too
    done = subprocess.run([BIN/"animepop_reproduce", "--only", "01_corpus", "--out", str(tmp_path/"figs")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert "01_corpus ..." not in done.stdout


def test_reproduce_tables_1_2_8_9_and_figures_2_3_4(release, tmp_path):
    out, info = release
    figs, env = tmp_path/"figs", isolated_root(tmp_path)
    done = subprocess.run([BIN/"animepop_reproduce", "--data", str(out), "--only", "01_corpus,02_score,03_split", "--out", str(figs)],
                          capture_output=True, text=True, timeout=1200, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("table1_synopsis_by_score.csv", "table2_descriptions.csv", "table8_synopsis_by_score_per_split.csv",
                 "table9_descriptions_per_split.csv", "figure2_words_characters_by_score.png", "figure3_synopsis_words_per_split.png",
                 "figure4_description_words_per_split.png", "corpus_cleaning.csv", "label_weighted_vs_mal.csv"):
        assert (figs/name).stat().st_size > 0, name
    manifest = json.loads((figs/"manifest.json").read_text())
    assert manifest["data_layout"] == "release" and all(a["rewritten"] for a in manifest["artifacts"])
    split = pd.read_csv(tmp_path/"root"/"data"/"processed"/"split_seed42.csv").set_index("mal_id")
    assert split.split.eq("test").equals(expected_parts(info).reindex(split.index).eq("test"))
    table8 = pd.read_csv(figs/"table8_synopsis_by_score_per_split.csv").set_index(["Split", "Score"])
    assert table8.loc[("test", "Total"), "Samples"] == split.split.eq("test").sum()
    assert table8.loc[("train+val", "Total"), "Samples"] == split.split.ne("test").sum()
    assert table8.loc[("test", "Total"), "Samples (paper)"] == 1439                                # beside the paper's
    clusters = pd.read_csv(figs/"split_clusters.csv").iloc[0]
    assert clusters["test split"] == "published" and clusters["clusters across the published train/test"] == 0
    cleaning = pd.read_csv(figs/"corpus_cleaning.csv")
    assert cleaning.step.iloc[0] == "rows of Anime_train.csv and Anime_test.csv"


@pytest.mark.slow
def test_quick_reproduction_runs_every_notebook(release, shared_data, tmp_path):
    out, _ = release
    figs, env = tmp_path/"figs", isolated_root(tmp_path, share_embeddings=True, shared=shared_data)
    done = subprocess.run([BIN/"animepop_reproduce", "--data", str(out), "--quick", "--out", str(figs)],
                          capture_output=True, text=True, timeout=3600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((figs/"manifest.json").read_text())
    assert manifest["notebooks"] == ["01_corpus", "02_score", "03_split", "07_experiments", "08_pitch"]
    names = {a["artifact"] for a in manifest["artifacts"]}
    assert {"table11_results", "figure6_learning_curves", "pitch_ablation"} <= names
    assert all(a["rewritten"] for a in manifest["artifacts"])
