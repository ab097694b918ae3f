"""The pitch tools end to end through their console scripts: a train/predict round trip on a small real slice, and
every kind of bad input answered by one line naming the field, exit status 2 and no traceback."""
import gzip, json, os, shutil, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BIN = Path(sys.executable).parent


ENV = os.environ | {"ANIMEPOP_THREADS": "1", "OMP_NUM_THREADS": "1"}  # several tools run at once on few cores


def run(tool: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN/tool), *map(str, args)], capture_output=True, text=True, timeout=300, env=ENV)


@pytest.fixture(scope="session")
def slice_dir(tmp_path_factory, shared_data) -> Path:
    "A processed corpus of 260 real anime, 30 of them with characters (and portraits), and 40 short-synopsis anime."
    from animepop.config import PROCESSED
    from animepop.corpus import load_corpus, read_short_synopsis
    c = load_corpus()
    with_chars = c.characters.mal_id.unique()[:30]
    others = c.anime.mal_id[~c.anime.mal_id.isin(c.characters.mal_id)].iloc[:230]
    ids = set(with_chars) | set(others)
    d = tmp_path_factory.mktemp("corpus")
    c.anime[c.anime.mal_id.isin(ids)].to_parquet(d/"anime.parquet")
    c.characters[c.characters.mal_id.isin(ids)].to_parquet(d/"characters.parquet")
    read_short_synopsis(PROCESSED).iloc[:40].to_parquet(d/"short_synopsis.parquet")
    return d


@pytest.fixture(scope="session")
def model_dir(slice_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models")/"small"
    r = run("animepop_train", "--inputs", "synopsis,metadata,characters,franchise", "--data", slice_dir, "--out", out, "--folds", 2)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="session")
def good_pitch(slice_dir) -> dict:
    a = pd.read_parquet(slice_dir/"anime.parquet").iloc[0]
    ch = pd.read_parquet(slice_dir/"characters.parquet").iloc[0]
    return {"title": "A pitch", "synopsis": a.synopsis,
            "characters": [{"name": ch["name"], "description": ch.description, "portrait": ch.portrait}],
            "metadata": {"type": "TV", "source": "Manga", "episodes": 12, "episode_minutes": 24, "year": 2027,
                         "season": "spring", "genres": ["Action", "Drama"], "studios": ["A New Studio"],
                         "producers": ["Aniplex", "A New Committee Member"]},
            "franchise_scores": [7.9, 8.2], "earlier_works": [{"relation": "PREQUEL", "score": 8.2, "year": 2024}]}


def write(tmp_path, obj, name="pitch.json") -> Path:
    p = tmp_path/name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def test_model_folder(model_dir):
    card = json.loads((model_dir/"card.json").read_text())
    assert card["inputs"] == ["synopsis", "metadata", "characters", "franchise"] and card["n_with_characters"] > 0
    assert {"scikit-learn", "lightgbm"} <= set(card["versions"]) and card["data"]["sha256"]
    assert 0 < card["n_short_synopsis"] <= 40  # a processed folder's short-synopsis anime train the model
    assert (model_dir/"model.sha256").read_text().split()[0] == card["sha256"]


def test_predict_pitch(model_dir, good_pitch, tmp_path):
    r = run("animepop_predict", "--model", model_dir, "--pitch", write(tmp_path, good_pitch), "--out", tmp_path/"p.csv")
    assert r.returncode == 0, r.stderr
    assert "predicted MAL score" in r.stdout and "characters" in r.stdout
    p = pd.read_csv(tmp_path/"p.csv").iloc[0]
    assert 1 <= p.lo <= p.score <= p.hi <= 10
    no_chars = {k: v for k, v in good_pitch.items() if k != "characters"}
    r = run("animepop_predict", "--model", model_dir, "--pitch", write(tmp_path, no_chars), "--as-json")
    res = json.loads(r.stdout)
    assert res["inputs_used"] == ["synopsis", "metadata", "franchise"] and len(res["top_features"]) == 5


def test_synopsis_model_looks_up_earlier_works(slice_dir, good_pitch, tmp_path):
    "A synopsis-only model keeps its dated training synopses with their scores, and a pitch (made now) looks them up."
    from animepop.pitch_folder import load_model
    from animepop.pitch_format import pitch_frame
    r = run("animepop_train", "--inputs", "synopsis", "--data", slice_dir, "--out", tmp_path/"syn", "--folds", 2)
    assert r.returncode == 0, r.stderr
    model, _ = load_model(tmp_path/"syn")
    vectors, words, when, scores = model.record_
    assert len(vectors) > 100 and words.shape[0] == len(vectors) and np.isfinite(when).all() and ((scores >= 1) & (scores <= 10)).all()
    X = pitch_frame({"synopsis": good_pitch["synopsis"]}, model.inputs, {})
    found = model.parts(X, cache=False).table.iloc[0]
    assert 0 < found.similar_best_sim <= 1.001 and 1 <= found.similar_best_score <= 10
    assert 0 < found.similar_words_best_sim <= 1.001 and 1 <= found.similar_words_best_score <= 10
    r = run("animepop_predict", "--model", tmp_path/"syn", "--pitch", write(tmp_path, {"synopsis": good_pitch["synopsis"]}), "--as-json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["inputs_used"] == ["synopsis"]


def test_original_work(model_dir, good_pitch, tmp_path):
    "A pitch without franchise scores is an original work, and the output says so."
    pitch = {k: v for k, v in good_pitch.items() if k not in ("franchise_scores", "earlier_works")}
    r = run("animepop_predict", "--model", model_dir, "--pitch", write(tmp_path, pitch))
    assert r.returncode == 0, r.stderr
    assert "scored as an original work" in r.stdout


def test_unknown_value_names_the_closest(model_dir, good_pitch, tmp_path):
    r = run("animepop_predict", "--model", model_dir, "--pitch", write(tmp_path, changed(good_pitch, lambda p: p["metadata"].update(genres=["Actoin"]))))
    bad(r, "metadata.genres")
    assert "closest known: 'Action'" in r.stderr and r.stderr.count(",") < 5, r.stderr


def test_help_spells_options_with_dashes():
    r = run("animepop_predict", "--help")
    assert r.returncode == 0 and "--as-json" in r.stdout and "--as_json" not in r.stdout


def test_predict_corpus(model_dir, shared_data, tmp_path):
    lines = gzip.open(shared_data/"anime-mapper"/"anime.jsonl.gz", "rt").readlines()[:30]
    i = next(i for i, line in enumerate(lines) if len((json.loads(line).get("synopsis") or "").split()) >= 40)
    new = json.loads(lines[i]); new["genres"] = [*(new.get("genres") or []), "Space Opera Noir"]  # a genre newer than the model
    lines[i] = json.dumps(new) + "\n"
    with gzip.open(tmp_path/"few.jsonl.gz", "wt") as f: f.writelines(lines)
    r = run("animepop_predict", "--model", model_dir, "--corpus", tmp_path/"few.jsonl.gz", "--out", tmp_path/"c.csv")
    assert r.returncode == 0, r.stderr
    c = pd.read_csv(tmp_path/"c.csv")
    assert list(c.columns) == ["mal_id", "score", "lo", "hi", "unknown_values"] and len(c) > 5
    assert c.score.between(1, 10).all() and (c.lo <= c.score).all()
    assert len(c) + r.stderr.count("skipped mal_id") == 30  # every record scored or reported
    first = c[c.mal_id == new["idMal"]]
    assert len(first) == 1 and first.unknown_values.iloc[0] >= 1  # scored, the unknown genre left out and counted
    assert "ignored unknown metadata.genres 'Space Opera Noir'" in r.stderr


def test_train_from_mapper_file(shared_data, tmp_path):
    "A mapper file trains on its corpus and, beside it, on the scored anime that only the synopsis floor drops."
    lines = gzip.open(shared_data/"anime-mapper"/"anime.jsonl.gz", "rt").readlines()[:600]
    with gzip.open(tmp_path/"few.jsonl.gz", "wt") as f: f.writelines(lines)
    records = [json.loads(line) for line in lines]
    scored = [r for r in records if (r.get("score") or {}).get("malScore") is not None]
    n_long = sum(len((r.get("synopsis") or "").split()) >= 20 for r in scored)
    r = run("animepop_train", "--inputs", "metadata,franchise", "--data", tmp_path/"few.jsonl.gz", "--out", tmp_path/"m", "--folds", 2)
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path/"m"/"card.json").read_text())
    assert 0 < card["n_short_synopsis"] <= len(scored) - n_long  # test-connected short anime are left out
    assert 0 < card["n_train"] < n_long  # train + validation of the file's own split
    assert "short-synopsis anime" in (tmp_path/"m"/"card.md").read_text()


def bad(r: subprocess.CompletedProcess, field: str):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    assert f"error: {field}" in r.stderr, r.stderr


def changed(pitch: dict, change) -> dict:
    p = json.loads(json.dumps(pitch)); change(p); return p


BAD_PITCHES = {  # case: (change to a good pitch, field the error must name)
    "empty synopsis": (lambda p: p.update(synopsis=""), "synopsis"),
    "short synopsis": (lambda p: p.update(synopsis="A short pitch."), "synopsis"),
    "unknown type": (lambda p: p["metadata"].update(type="Series"), "metadata.type"),
    "unknown genre": (lambda p: p["metadata"].update(genres=["Actoin"]), "metadata.genres"),
    "episodes not a number": (lambda p: p["metadata"].update(episodes="twelve"), "metadata.episodes"),
    "unknown metadata field": (lambda p: p["metadata"].update(studio=["Bones"]), "metadata.studio"),
    "no metadata": (lambda p: p.pop("metadata"), "metadata"),
    "portrait missing": (lambda p: p["characters"][0].update(portrait="missing.png"), "characters[0].portrait"),
    "empty description": (lambda p: p["characters"][0].update(description=""), "characters[0].description"),
    "franchise score off the scale": (lambda p: p.update(franchise_scores=[85]), "franchise_scores"),
    "unknown relation": (lambda p: p["earlier_works"][0].update(relation="Sequel of"), "earlier_works[0].relation"),
    "earlier work's score off the scale": (lambda p: p["earlier_works"][0].update(score=82), "earlier_works[0].score"),
    "relations in the old format": (lambda p: p.update(earlier_relations=["PREQUEL"]), "earlier_relations"),
    "producers not a list": (lambda p: p["metadata"].update(producers="Aniplex"), "metadata.producers"),
}


@pytest.fixture(scope="session")
def bad_runs(model_dir, slice_dir, good_pitch, tmp_path_factory) -> dict:
    "Every bad-input case through the console scripts, run concurrently (each start-up costs seconds)."
    d = tmp_path_factory.mktemp("bad")
    broken = d/"broken"
    shutil.copytree(model_dir, broken)
    with open(broken/"model.pkl", "ab") as f: f.write(b"tampered")
    old = d/"old"  # a model saved by an animepop whose features differ
    shutil.copytree(model_dir, old)
    (old/"card.json").write_text(json.dumps(json.loads((model_dir/"card.json").read_text()) | {"format": 1}))
    fake = write(d, "plain text", "fake.jpg")
    pitch = write(d, good_pitch, "good.json")
    cases = {k: ("animepop_predict", "--model", model_dir, "--pitch", write(d, changed(good_pitch, c), f"{i}.json"))
             for i, (k, (c, _)) in enumerate(BAD_PITCHES.items())}
    cases |= {
        "portrait not an image": ("animepop_predict", "--model", model_dir, "--pitch",
                                  write(d, changed(good_pitch, lambda p: p["characters"][0].update(portrait=str(fake))), "img.json")),
        "malformed json": ("animepop_predict", "--model", model_dir, "--pitch", write(d, '{"synopsis": "x",', "bad.json")),
        "pitch file missing": ("animepop_predict", "--model", model_dir, "--pitch", d/"absent.json"),
        "checksum fails": ("animepop_predict", "--model", broken, "--pitch", pitch),
        "model missing": ("animepop_predict", "--model", d/"none", "--pitch", pitch),
        "model of an older format": ("animepop_predict", "--model", old, "--pitch", pitch),
        "neither pitch nor corpus": ("animepop_predict", "--model", model_dir),
        "corpus not gzip": ("animepop_predict", "--model", model_dir, "--corpus", write(d, "x", "c.jsonl.gz")),
        "unknown input": ("animepop_train", "--inputs", "synopsis,plot", "--data", slice_dir),
        "data missing": ("animepop_train", "--data", d/"nowhere"),
    }
    with ThreadPoolExecutor(4) as pool: return dict(zip(cases, pool.map(lambda a: run(*a), cases.values())))


@pytest.mark.parametrize("case", list(BAD_PITCHES))
def test_bad_pitch(bad_runs, case): bad(bad_runs[case], BAD_PITCHES[case][1])


@pytest.mark.parametrize("case, field", [
    ("portrait not an image", "characters[0].portrait"), ("malformed json", "pitch"), ("pitch file missing", "pitch"),
    ("checksum fails", "model"), ("model missing", "model"), ("model of an older format", "model"), ("neither pitch nor corpus", "input"),
    ("corpus not gzip", "corpus"), ("unknown input", "inputs"), ("data missing", "data")])
def test_bad_files_and_arguments(bad_runs, case, field): bad(bad_runs[case], field)


def test_pitch_without_portraits_imports_no_torch(model_dir, good_pitch, tmp_path):
    "A new pitch's texts are encoded without torch (`animepop.minilm`): importing it alone took longer than the whole prediction."
    pitch = {**good_pitch, "characters": [{k: v for k, v in c.items() if k != "portrait"} for c in good_pitch["characters"]]}
    code = ("import sys; from animepop.pitch_tools import predict_cli; predict_cli(model=sys.argv[1], pitch=sys.argv[2], as_json=True); "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code, str(model_dir), str(write(tmp_path, pitch))], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    result, imported = r.stdout.strip().splitlines()
    assert json.loads(result)["n_characters"] == 1 and imported == "[]"
