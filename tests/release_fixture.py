"""A folder in the exact layout of the authors' release (Zenodo 13835115), built from the real shared data.

Anime: real synopses, titles and MAL scores of the project's corpus. Characters: the real characters of the shared
sample with their real descriptions and portraits (JPEG converted to `char <part>/<MAL ID>.png`), under made-up MAL
ids: those the sample links to corpus anime keep their anime; the others go to other corpus anime, some to two of
them, so that characters are shared between anime of one part, as the authors' cluster split has them. Whole clusters
of anime sharing a character go to train or test. Planted faults, one of each kind the reader and the cleaning
count: a listed id without a row, "No description available", an empty description, a missing and an unreadable PNG,
short synopses, an unreadable Score, an unreadable Main Characters list.
"""
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from animepop.config import PROCESSED, ROOT
from animepop.corpus import load_corpus, read_sample_records, read_short_synopsis
from animepop.release import parse_character_ids, stable_id

FIRST_ID, NO_ROW_ID = 100_001, 999_001


def _components(anime_ids: list, links: pd.DataFrame) -> pd.Series:
    "Cluster of each anime id: anime that share a character are linked."
    pos = {a: i for i, a in enumerate(anime_ids)}
    e = [(pos[a], pos[b]) for _, g in links.groupby("cid").mal_id for a, b in zip(sorted(g)[:-1], sorted(g)[1:])]
    e = np.array(e, np.int64).reshape(-1, 2)
    n = len(anime_ids)
    _, comp = connected_components(coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)), directed=False)
    return pd.Series(comp, index=anime_ids)


def build_release(shared: Path, out: Path, n_other: int = 120, seed: int = 0) -> dict:
    "Write the release layout into `out`; what was planted: {'parts': {anime id the reader gives: part}, 'faults': {...}, 'anime': n, 'links': n}."
    rng = np.random.default_rng(seed)
    corpus = load_corpus(data=shared)
    sample = read_sample_records(shared/"characters-sample").set_index("char_id")
    cid = {c: FIRST_ID + i for i, c in enumerate(sorted(sample.index))}
    linked = corpus.characters[["char_id", "mal_id"]].drop_duplicates()
    links = linked.assign(cid=linked.char_id.map(cid))[["mal_id", "cid"]]
    # other corpus anime get the characters the sample links to none, one or two each; some characters go to two anime
    free = [cid[c] for c in sorted(set(sample.index) - set(linked.char_id))]
    others = corpus.anime[~corpus.anime.mal_id.isin(links.mal_id)].sample(n_other + 5, random_state=seed)
    extra, spare = others.iloc[:n_other], others.iloc[n_other:]
    rows = []
    for j, a in enumerate(extra.mal_id):
        rows += [(a, free[j % len(free)])] + ([(a, free[(j + 7) % len(free)])] if j % 3 == 0 else [])
    links = pd.concat([links, pd.DataFrame(rows, columns=["mal_id", "cid"])], ignore_index=True).drop_duplicates()
    anime = corpus.anime.set_index("mal_id").loc[sorted(set(links.mal_id))]
    comp = _components(list(anime.index), links)
    order = rng.permutation(comp.unique())
    test, n = set(), 0
    for c in order:
        size = int((comp == c).sum())
        if n + size <= round(0.185*len(comp)): test.add(c); n += size
    part = comp.map(lambda c: "test" if c in test else "train")
    desc = {cid[c]: d for c, d in sample.description.items()}
    names = {cid[c]: nm for c, nm in sample.name.items()}
    ports = {cid[c]: p for c, p in sample.portrait.items()}
    lists = links.groupby("mal_id").cid.agg(sorted)
    # faults: four characters of the train part (each kept by at least one other character of its anime where possible)
    train_chars = sorted(set(links.cid[links.mal_id.map(part).eq("train")]))
    nodesc, empty, noport, badpng = train_chars[:4]
    faults = {"no row": 1, "no description": int((links.cid == nodesc).sum()), "empty description": int((links.cid == empty).sum()),
              "no portrait": int((links.cid == noport).sum()), "unreadable png": int((links.cid == badpng).sum())}
    desc[nodesc], desc[empty] = "No description available", ""
    first_train = next(a for a in anime.index if part[a] == "train" and len(lists[a]) >= 2)
    lists[first_train] = lists[first_train] + [NO_ROW_ID]
    table = pd.DataFrame({"Title": anime.title, "Score": anime.score.map(lambda s: f"{s:.2f}"), "Synopsis": anime.synopsis,
                          "Main Characters": [f"[{', '.join(map(str, lists[a]))}]" for a in anime.index], "part": part})
    short = read_short_synopsis(PROCESSED).dropna(subset=["synopsis"]).head(3)
    bad = pd.DataFrame({"Title": [*short.title, *spare.title.iloc[:2]], "Score": [*short.score.map(lambda s: f"{s:.2f}"), "N/A", f"{spare.score.iloc[1]:.2f}"],
                        "Synopsis": [*short.synopsis, *spare.synopsis.iloc[:2]],
                        "Main Characters": [f"[{train_chars[5]}]"]*4 + [f"[{train_chars[5]}, x]"], "part": "train"})
    faults |= {"short synopsis": len(short), "unreadable score": 1, "unreadable main characters": 1}
    table = pd.concat([table, bad])
    parts = {}
    for p in ("train", "test"):
        t = table[table.part == p].drop(columns="part").reset_index(drop=True)
        t.to_csv(out/f"Anime_{p}.csv", index=True)  # the index column ("Unnamed: 0" when read back) is ignored by the reader
        used = sorted({c for l in t["Main Characters"] for c in map(int, l.strip("[]").replace("x", "0").split(", ")) if c in desc})
        pd.DataFrame({"MAL ID": used, "Name": [names[c] for c in used], "Description": [desc[c] for c in used]}).to_csv(out/f"Char_{p}.csv")
        (out/f"char {p}").mkdir(parents=True, exist_ok=True)
        for c in used:
            if c == noport: continue
            if c == badpng: (out/f"char {p}"/f"{c}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated"); continue
            with Image.open(ports[c]) as im: im.convert("RGB").save(out/f"char {p}"/f"{c}.png")
        parts |= {stable_id(s, float(v), parse_character_ids(l)): p for s, v, l in zip(t.Synopsis, t.Score, t["Main Characters"])
                  if parse_character_ids(l) is not None and v != "N/A"}
    return {"parts": parts, "faults": faults, "anime": len(table), "links": int(sum(len(l) for l in lists)),
            "shared characters": int((links.groupby("cid").size() > 1).sum())}


def isolated_root(tmp_path: Path, share_embeddings: bool = False, shared: Path = None) -> dict:
    "Environment of a project root in `tmp_path` (its own data/, runs/, models/; the real notebooks), with `shared` as ../shared if given."
    root = tmp_path/"root"; root.mkdir()
    if shared: (tmp_path/"shared").mkdir(); (tmp_path/"shared"/"data").symlink_to(shared)  # the notebooks' tests read the public sources
    (root/"nbs").symlink_to(ROOT/"nbs"); (root/"settings.ini").symlink_to(ROOT/"settings.ini")
    if share_embeddings:  # the project's content-keyed cache of encoder vectors: a text or portrait seen before is not encoded again
        (ROOT/"data"/"interim"/"embeddings").mkdir(parents=True, exist_ok=True)
        (root/"data"/"interim").mkdir(parents=True); (root/"data"/"interim"/"embeddings").symlink_to(ROOT/"data"/"interim"/"embeddings")
    env = {k: v for k, v in os.environ.items() if k not in ("ANIMEPOP_DATA_DIR", "ANIMEPOP_FIGURES_DIR")}
    return env | {"ANIMEPOP_ROOT": str(root)}


def build_release_at_scale(shared: Path, out: Path, n_anime: int = 7784, n_characters: int = 14682, seed: int = 0) -> dict:
    """A release-layout folder of the paper's size, for timing the pipeline: real synopses and scores of `n_anime` corpus
    anime, and `n_characters` characters made from the sample's (each with its own portrait bytes: the sample portrait
    cropped, mirrored and resized by its number; and its own text: the sample description's sentences rotated).
    Character j belongs to anime j mod n_anime, and every 20th also to that anime's neighbour in a pair (2k, 2k+1),
    so clusters have one or two anime. Not for accuracy: the characters do not belong to these anime."""
    rng = np.random.default_rng(seed)
    corpus = load_corpus(data=shared)
    anime = corpus.anime.sample(n_anime, random_state=seed).reset_index(drop=True)
    sample = read_sample_records(shared/"characters-sample").reset_index(drop=True)
    owners = [[j % n_anime] + ([(j % n_anime) ^ 1] if j % 20 == 0 and (j % n_anime) ^ 1 < n_anime else []) for j in range(n_characters)]
    lists = [[] for _ in range(n_anime)]
    for j, own in enumerate(owners):
        for a in own: lists[a].append(FIRST_ID + j)
    pair_test = rng.random((n_anime + 1)//2) < 0.185
    part = ["test" if pair_test[a // 2] else "train" for a in range(n_anime)]
    for p in ("train", "test"):
        rows = [a for a in range(n_anime) if part[a] == p]
        pd.DataFrame({"Title": anime.title[rows].to_numpy(), "Score": anime.score[rows].map(lambda s: f"{s:.2f}").to_numpy(),
                      "Synopsis": anime.synopsis[rows].to_numpy(),
                      "Main Characters": [f"[{', '.join(map(str, lists[a]))}]" for a in rows]}).to_csv(out/f"Anime_{p}.csv")
        chars = sorted({c for a in rows for c in lists[a]})
        (out/f"char {p}").mkdir(parents=True, exist_ok=True)
        descs = []
        for c in chars:
            j = c - FIRST_ID; s = sample.iloc[j % len(sample)]
            sentences = s.description.split(". "); k = (j // len(sample)) % max(1, len(sentences))
            descs.append(". ".join(sentences[k:] + sentences[:k]))
            with Image.open(s.portrait) as im:
                im = im.convert("RGB"); w, h = im.size; cut = 1 + (j // len(sample)) % 9
                im = im.crop((cut, cut, w - cut, h - cut)).resize((max(8, w - j % 7), max(8, h - j % 5)))
                (im.transpose(Image.FLIP_LEFT_RIGHT) if (j // len(sample)) % 2 else im).save(out/f"char {p}"/f"{c}.png")
        pd.DataFrame({"MAL ID": chars, "Name": [sample.name[(c - FIRST_ID) % len(sample)] for c in chars], "Description": descs}).to_csv(out/f"Char_{p}.csv")
    return {"anime": n_anime, "characters": n_characters, "test anime": int(sum(p == "test" for p in part))}


if __name__ == "__main__":  # python tests/release_fixture.py OUT [--scale]: a folder to run animepop_reproduce --data OUT on
    import sys
    from animepop.config import data_dir
    out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
    print((build_release_at_scale if "--scale" in sys.argv else build_release)(data_dir(), out))
