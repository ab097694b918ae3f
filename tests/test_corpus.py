"Integration tests of animepop.corpus on the real shared data (anime-mapper, mal-stats, characters sample)."
import json

import pandas as pd
import pytest
from PIL import Image

from animepop.config import PROCESSED
from animepop.corpus import (POST_RELEASE_FIELDS, RECEPTION_TAGS, ANIME_SCHEMA, Corpus, clean, load_corpus, n_words,
                             read_corpus, read_crawl, read_short_synopsis, read_sources, short_synopsis_anime)

# Hand-checked against the sample's descriptions: (sample name, MAL id it must link to).
FAMOUS = [("Doraemon", 501), ("Monkey D. Luffy", 21), ("Sanji", 21), ("Light Yagami", 1535), ("Ryuk", 1535),
          ("Gon Freecss", 136), ("Eren Yeager", 16498), ("Levi Ackerman", 16498), ("Goku", 223),
          ("Pikachu", 527), ("Asuka Langley Sohryu", 30), ("Nezuko Kamado", 38000), ("Saitama", 30276),
          ("Sakata Gintoki", 918), ("Izuku Midoriya", 31964), ("Edward Elric", 121), ("Houtarou Oreki", 12189),
          ("Loid Forger", 50265), ("Inuyasha", 249), ("Ken Kaneki", 22319), ("Vash the Stampede (Trigun)", 6),
          ("Rintaro Okabe", 9253), ("Kamina", 2001), ("Taki Tachibana", 32281)]


@pytest.fixture(scope="module")
def raw(shared_data) -> Corpus: return read_sources(shared_data)


@pytest.fixture(scope="module")
def cleaned(shared_data):
    "The cached corpus of data/processed (built when missing or stale) and its cleaning report."
    return load_corpus(data=shared_data), pd.read_csv(PROCESSED/"cleaning.csv")


def test_raw_counts(raw):
    a = raw.anime
    assert len(a) == 24_859 and a.mal_id.is_unique
    has_both = a.score.notna() & a.synopsis.fillna("").str.strip().astype(bool)
    assert 15_500 <= has_both.sum() <= 16_100           # README: about 15,800 with synopsis and MAL score
    assert 9_000 <= a.voters.notna().sum() <= 10_000    # mal-stats joins on about 9,100 ids


def test_cleaning_report(cleaned):
    corpus, report = cleaned
    assert report.step.iloc[0] == "raw" and report.anime.is_monotonic_decreasing
    assert report.anime.iloc[-1] == len(corpus.anime) and report.characters.iloc[-1] == len(corpus.characters)
    assert 10_000 <= len(corpus.anime) <= 13_000
    assert (corpus.anime.synopsis.str.split().str.len() >= 20).all() and corpus.anime.score.between(1, 10).all()
    assert not corpus.anime.synopsis.str.contains(r"\[Written by|\(Source:", regex=True).any()


def test_short_synopsis_stored(raw, cleaned):
    corpus, _ = cleaned
    short = read_short_synopsis(PROCESSED)
    assert 4_000 <= len(short) <= 5_000 and not short.mal_id.isin(corpus.anime.mal_id).any()
    assert (n_words(short.synopsis) < 20).all() and short.score.notna().all()
    assert short.mal_id.tolist() == short_synopsis_anime(raw, corpus).mal_id.tolist()


def test_no_post_release_fields(cleaned):
    corpus, _ = cleaned
    assert list(corpus.anime.columns) == list(ANIME_SCHEMA)
    assert not set(corpus.anime.columns) & set(POST_RELEASE_FIELDS)
    genres = {g for gs in corpus.anime.genres for g in gs}
    assert "Action" in genres and not genres & set(RECEPTION_TAGS)


def test_character_links(cleaned):
    chars = cleaned[0].characters
    assert 150 <= len(chars) <= 300 and chars.role.eq("Main").all()
    assert chars.portrait.map(lambda p: p.endswith(".jpg") or p.endswith(".png") or "." in p).all()
    links = set(zip(chars.name, chars.mal_id))
    missing = [(n, i) for n, i in FAMOUS if (n, i) not in links]
    assert not missing, missing
    # Naruto (MAL 20) is not in the data: his description must not link the horror anime Uzumaki (40333).
    assert not ((chars.name == "Naruto Uzumaki") | (chars.mal_id == 40333)).any()


def test_mapper_reader_types(raw):
    a = raw.anime
    assert a.mal_id.dtype == "int64" and str(a.year.dtype) == "Int64"
    bebop = a.set_index("mal_id").loc[1]
    assert bebop.title == "Cowboy Bebop" and bebop.score == 8.75 and 5 in bebop.related
    assert set(a.type.dropna()) <= {"TV", "Movie", "OVA", "ONA", "Music", "Special", "TV Special", "CM", "PV"}


def test_load_corpus_cache(cleaned):
    c = cleaned[0]
    meta = json.loads((PROCESSED/"corpus.json").read_text())
    assert meta["files"]["anime.parquet"]["rows"] == len(c.anime)
    assert set(meta["sources"]) == {"anime_mapper", "mal_stats", "characters_sample"}
    again = read_corpus(PROCESSED)
    pd.testing.assert_frame_equal(again.anime.drop(columns=["genres", "studios", "producers", "related"]),
                                  c.anime.drop(columns=["genres", "studios", "producers", "related"]))
    assert again.anime.genres.tolist() == c.anime.genres.tolist()


def test_crawl_folder(tmp_path):
    (tmp_path/"portraits").mkdir(); Image.new("RGB", (4, 4)).save(tmp_path/"portraits"/"7.jpg")
    anime = {"mal_id": 7, "title": "T", "synopsis": "word " * 25, "score": 7.1, "genres": ["Drama", "Award Winning"],
             "related": [{"mal_id": 8, "relation": "Sequel"}]}
    char = {"char_id": 70, "mal_id": 7, "name": "N", "role": "Main", "description": "d " * 10,
            "portrait": "portraits/7.jpg", "portrait_url": None}
    (tmp_path/"anime.jsonl").write_text(json.dumps(anime) + "\n")
    (tmp_path/"characters.jsonl").write_text(json.dumps(char) + "\n")
    corpus, _ = clean(read_crawl(tmp_path))
    assert corpus.anime.genres.tolist() == [["Drama"]] and corpus.anime.related.tolist() == [[8]]
    assert corpus.characters.char_id.tolist() == ["mal:70"]
