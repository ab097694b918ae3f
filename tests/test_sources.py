"""`animepop_fetch` against a local server on 127.0.0.1 that plays GitHub (a tree listing and raw files at a commit)
and Zenodo (a record of the REST API's shape), serving copies of real files of ../shared/data: the mal-stats Parquet
file as published, anime-mapper records of the shared copy written back as one JSON file per anime (the repository's
layout, with audience counts in their score block for the conversion to drop), animepedia cards made from the real
character sample (its descriptions, its portraits as larger PNGs) and a zip of a release-layout folder. Faults are
injected per request: a connection dropped mid-body, 429 with Retry-After, 404, a wrong published checksum."""
import gzip, hashlib, io, json, socket, subprocess, sys, threading, time, zipfile
from collections import defaultdict, deque
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from PIL import Image
from werkzeug import Request, Response

from animepop.config import find_layout
from animepop.sources import MAPPER_COMMIT, SOURCES, ANIMEPEDIA_COMMIT, STATS_COMMIT, RELEASE_RECORD, FetchError, fetch
from release_fixture import isolated_root

BIN = Path(sys.executable).parent
FAMOUS = {"Monkey D. Luffy": 21, "Light Yagami": 1535, "Gon Freecss": 136, "Edward Elric": 121, "Saitama": 30276,
          "Nezuko Kamado": 38000, "Izuku Midoriya": 31964, "Goku": 223, "Pikachu": 527, "Doraemon": 501}


def git_sha1(body: bytes) -> str: return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()


class Mirror:
    "Routes of a fake GitHub and Zenodo on a pytest-httpserver; `faults[path]` is consumed one fault per request."
    def __init__(self, server):
        self.server, self.files, self.faults, self.times = server, {}, defaultdict(deque), defaultdict(list)
        self.lock = threading.Lock()

    @property
    def url(self) -> str: return self.server.url_for("").rstrip("/")

    def serve(self, path: str, body: bytes):
        self.files[path] = body
        self.server.expect_request(path).respond_with_handler(lambda req: self.respond(req, path))

    def respond(self, req: Request, path: str) -> Response:
        with self.lock:
            fault = self.faults[path].popleft() if self.faults[path] else None
            self.times[path].append(time.monotonic())
        body = self.files[path]
        if fault == "429": return Response(b"slow down", 429, headers={"Retry-After": "1"})
        if fault == "404": return Response(b"Not Found", 404)
        start = int(req.headers["Range"].removeprefix("bytes=").split("-")[0]) if "Range" in req.headers else 0
        status, part = (206, body[start:]) if start else (200, body)
        headers = {"Content-Length": str(len(part)), **({"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"} if start else {})}
        if fault == "drop":
            def cut():
                yield part[:len(part)//3]
                raise ConnectionAbortedError("dropped mid-body")  # werkzeug closes the connection: the client sees a short body
            return Response(cut(), status, headers=headers)
        return Response(part, status, headers=headers)

    def github(self, repo: str, commit: str, files: dict):
        tree = [{"path": p, "type": "blob", "sha": git_sha1(b), "size": len(b)} for p, b in files.items()]
        self.serve(f"/repos/{repo}/git/trees/{commit}", json.dumps({"sha": commit, "tree": tree, "truncated": False}).encode())
        for p, b in files.items(): self.serve(f"/{repo}/{commit}/{p}", b)

    def zenodo(self, record: int, files: dict, checksums: dict = None):
        entries = [{"key": k, "size": len(b), "checksum": (checksums or {}).get(k, f"md5:{hashlib.md5(b).hexdigest()}"),
                    "links": {"self": f"https://zenodo.org/api/records/{record}/files/{quote(k)}/content"}} for k, b in files.items()]
        self.serve(f"/api/records/{record}", json.dumps({"id": record, "files": entries}).encode())
        for k, b in files.items(): self.serve(f"/api/records/{record}/files/{k}/content", b)

    def requests(self) -> int: return sum(len(t) for t in self.times.values())


@pytest.fixture
def mirror(httpserver): return Mirror(httpserver)


@pytest.fixture(scope="module")
def real(shared_data):
    "Real files of the shared data, in the shapes the public sources publish them."
    records = [json.loads(l) for l in gzip.open(shared_data/"anime-mapper"/"anime.jsonl.gz", "rt", encoding="utf-8")]
    wanted = set(FAMOUS.values())
    picked = [r for r in records if r["idMal"] in wanted] + [r for r in records if r["idMal"] not in wanted][:30]
    mapper = {f"data/anime/{r['idMal'] // 1000:03d}/{r['idMal']}.json":
              json.dumps({**r, "score": {**r["score"], "malScoredBy": 12345, "malMembers": 678}}, indent=2, ensure_ascii=False).encode()
              for r in picked}
    sample = [json.loads(l) for l in (shared_data/"characters-sample"/"characters.jsonl").read_text().splitlines()]
    sample = [c for c in sample if c["name"] in FAMOUS][:len(FAMOUS)]
    images, cards = {}, []
    for c in sample:
        with Image.open(shared_data/"characters-sample"/c["portrait"]) as im:
            big = im.convert("RGB").resize((im.width*2, im.height*2))
        buf = io.BytesIO(); big.save(buf, "PNG")
        src = f"images/{Path(c['portrait']).stem}.png"; images[src] = buf.getvalue()
        words = c["description"].split(" ")
        paras = f"<p>{' '.join(words[:len(words)//2])}</p>\n<p>\n  {' '.join(words[len(words)//2:])}</p>"  # two paragraphs, as the cards have
        cards.append(f'<div class="card"><div class="row"><div><img src="./{src}" alt="x"></div><div class="card-body">'
                     f'<h2 class="card-title">{c["name"]}</h2>{paras}<hr><p>Contributed by- someone</p></div></div></div>')
    page = ("<html><body><div class='container'>" + "".join(cards) + "</div></body></html>").encode()
    stats = (shared_data/"mal-stats"/"clean_anime.parquet").read_bytes()
    return {"mapper": mapper, "mapper_records": picked, "sample": sample, "animepedia": {"index.html": page, **images}, "stats": stats}


def serve_cpu(m: Mirror, real: dict):
    m.github("varygx/AnimeAnalysis", STATS_COMMIT, {"data/analysis_data/clean_anime.parquet": real["stats"]})
    m.github("subhajeetch-fl/anime-mapper", MAPPER_COMMIT, real["mapper"])
    m.github("DecodersCommunity/animepedia", ANIMEPEDIA_COMMIT, real["animepedia"])


def release_zip(shared_data) -> bytes:
    "A zip of a small folder in the release layout (Database/...), real synopses and portraits."
    records = [json.loads(l) for l, _ in zip(gzip.open(shared_data/"anime-mapper"/"anime.jsonl.gz", "rt"), range(3))]
    port = sorted((shared_data/"characters-sample"/"portraits").glob("*.jpg"))[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for part, r in (("train", records[0]), ("test", records[1])):
            anime = pd.DataFrame({"Score": [r["score"]["malScore"]], "Synopsis": [r["synopsis"]], "Main Characters": ["[7]"]})
            z.writestr(f"Database/Anime_{part}.csv", anime.to_csv(index=False))
            z.writestr(f"Database/Char_{part}.csv", pd.DataFrame({"MAL ID": [7], "Description": ["The character of a real portrait."]}).to_csv(index=False))
            png = io.BytesIO(); Image.open(port).convert("RGB").save(png, "PNG")
            z.writestr(f"Database/char {part}/7.png", png.getvalue())
    return buf.getvalue()


def run_fetch(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([BIN/"animepop_fetch", *args, "--quiet"], capture_output=True, text=True, timeout=300, env=env)


def test_fresh_fetch_converts_then_second_run_requests_nothing(mirror, real, tmp_path):
    serve_cpu(mirror, real)
    rows = fetch(["cpu"], tmp_path, base_url=mirror.url, progress=False)
    assert (tmp_path/"mal-stats"/"clean_anime.parquet").read_bytes() == real["stats"]             # used as published
    lines = [json.loads(l) for l in gzip.open(tmp_path/"anime-mapper"/"anime.jsonl.gz", "rt", encoding="utf-8")]
    assert lines == sorted(real["mapper_records"], key=lambda r: r["idMal"])                       # the shared copy's records, back
    chars = [json.loads(l) for l in (tmp_path/"characters-sample"/"characters.jsonl").read_text().splitlines()]
    assert [(c["name"], c["description"]) for c in chars] == [(c["name"], c["description"]) for c in real["sample"]]
    for c in chars:
        with Image.open(tmp_path/"characters-sample"/c["portrait"]) as im: assert im.format == "JPEG" and max(im.size) <= 320
    assert find_layout(tmp_path)[0] == "shared"
    assert {r["action"] for r in rows if r["source"] == "mal-stats"} == {"downloaded (git-sha1 verified)"}
    assert sum(r["action"].startswith("converted") for r in rows) == 2
    before = mirror.requests()
    again = fetch(["cpu"], tmp_path, base_url=mirror.url, progress=False)
    assert mirror.requests() == before                                                               # nothing requested
    assert {r["action"] for r in again} == {"present, verified (not requested)"}                     # nor converted again


def test_resume_after_connection_dropped_mid_body(mirror, real, tmp_path):
    serve_cpu(mirror, real)
    path = f"/varygx/AnimeAnalysis/{STATS_COMMIT}/data/analysis_data/clean_anime.parquet"
    mirror.faults[path].append("drop")
    log_start = len(mirror.server.log)
    rows = fetch(["mal-stats"], tmp_path, base_url=mirror.url, progress=False, backoff=0.05)
    gets = [req for req, _ in mirror.server.log[log_start:] if req.path == path]
    assert len(gets) == 2 and "Range" not in gets[0].headers
    resumed_at = int(gets[1].headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at < len(real["stats"])
    assert rows[0]["action"] == f"downloaded, resumed at byte {resumed_at:,} (git-sha1 verified)"
    assert (tmp_path/"mal-stats"/"clean_anime.parquet").read_bytes() == real["stats"]
    assert not (tmp_path/"mal-stats"/"clean_anime.parquet.part").exists()


def test_429_waits_as_retry_after_says(mirror, real, tmp_path):
    serve_cpu(mirror, real)
    path = f"/varygx/AnimeAnalysis/{STATS_COMMIT}/data/analysis_data/clean_anime.parquet"
    mirror.faults[path].append("429")
    fetch(["mal-stats"], tmp_path, base_url=mirror.url, progress=False, backoff=0.05)
    first, second = mirror.times[path]
    assert second - first >= 0.95                                                                    # Retry-After: 1, not the 0.05 s backoff
    assert (tmp_path/"mal-stats"/"clean_anime.parquet").read_bytes() == real["stats"]


def test_404_names_the_file_and_exits_2(mirror, real, tmp_path):
    serve_cpu(mirror, real)
    missing = sorted(real["mapper"])[3]
    mirror.faults[f"/subhajeetch-fl/anime-mapper/{MAPPER_COMMIT}/{missing}"].append("404")
    done = run_fetch("anime-mapper", "--to", str(tmp_path), "--base-url", mirror.url)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{missing}: " in done.stderr and "HTTP 404" in done.stderr
    assert not (tmp_path/"anime-mapper"/"anime.jsonl.gz").exists()                                 # nothing converted from a partial set
    assert len(list((tmp_path/"anime-mapper"/"published"/"data"/"anime").rglob("*.json"))) == len(real["mapper"]) - 1  # the rest is kept


def test_wrong_checksum_deletes_the_download_and_exits_2(mirror, real, shared_data, tmp_path):
    body = release_zip(shared_data)
    mirror.zenodo(RELEASE_RECORD, {"Database.zip": body}, checksums={"Database.zip": "md5:" + "0"*32})
    done = run_fetch("authors-release", "--to", str(tmp_path), "--base-url", mirror.url)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"Database.zip: checksum mismatch: expected md5:{'0'*32}, got md5:{hashlib.md5(body).hexdigest()}" in done.stderr
    assert not any(p.name.startswith("Database.zip") for p in (tmp_path/"authors-release").iterdir())


def test_archive_is_verified_and_extracted_once(mirror, real, shared_data, tmp_path):
    body = release_zip(shared_data)
    mirror.zenodo(RELEASE_RECORD, {"Database.zip": body})
    done = run_fetch("authors-release", "--to", str(tmp_path), "--base-url", mirror.url)
    assert done.returncode == 0, done.stderr
    assert "authors-release: Database.zip: downloaded (md5 verified)" in done.stdout
    assert "authors-release: Database.zip: extracted 6 files" in done.stdout
    assert find_layout(tmp_path/"authors-release") == ("release", tmp_path/"authors-release"/"Database")
    before = mirror.requests()
    again = run_fetch("authors-release", "--to", str(tmp_path), "--base-url", mirror.url)
    assert mirror.requests() == before and again.stdout.strip() == "authors-release: Database.zip: present, verified (not requested)"


def closed_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def test_offline_names_each_missing_file_its_url_and_place(tmp_path):
    t = time.time()
    with pytest.raises(FetchError) as e: fetch(["cpu"], tmp_path, base_url=f"http://127.0.0.1:{closed_port()}", progress=False)
    assert time.time() - t < 10                                                                      # an unreachable host is not retried
    msg = str(e.value)
    for s in ("anime-mapper", "mal-stats", "characters-sample"):
        for place, url in SOURCES[s].provides.items(): assert f"{(tmp_path/place).resolve()}  <-  {url}" in msg


def test_reproduce_without_data_folder_fetches_then_runs(mirror, real, tmp_path):
    serve_cpu(mirror, real)
    env = isolated_root(tmp_path) | {"ANIMEPOP_FETCH_BASE_URL": mirror.url}
    done = subprocess.run([BIN/"animepop_reproduce", "--only", "01_corpus", "--out", str(tmp_path/"figs")], capture_output=True,
                          text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.index("no data folder: fetching anime-mapper, mal-stats, characters-sample") < out.index("01_corpus (1 at a time) ...")
    assert (tmp_path/"root"/"data"/"raw"/"anime-mapper"/"anime.jsonl.gz").exists()
    manifest = json.loads((tmp_path/"figs"/"manifest.json").read_text())
    assert manifest["data_dir"] == str(tmp_path/"root"/"data"/"raw") and manifest["data_layout"] == "shared"
    assert (tmp_path/"figs"/"table1_synopsis_by_score.csv").exists()


def test_reproduce_offline_without_data_folder_says_what_to_fetch(tmp_path):
    env = isolated_root(tmp_path) | {"ANIMEPOP_FETCH_BASE_URL": f"http://127.0.0.1:{closed_port()}"}
    done = subprocess.run([BIN/"animepop_reproduce", "--out", str(tmp_path/"figs")], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    raw = (tmp_path/"root"/"data"/"raw").resolve()
    for place in ("anime-mapper/anime.jsonl.gz", "mal-stats/clean_anime.parquet", "characters-sample/characters.jsonl"):
        assert f"{raw/place}  <-  http" in done.stderr or f"{raw/place}  <-  assembled from https://" in done.stderr or f"{raw/place}  <-  built from https://" in done.stderr
    assert "01_corpus" not in done.stdout and not (tmp_path/"root"/"runs").exists()                 # before any notebook runs
