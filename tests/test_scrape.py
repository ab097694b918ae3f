"""The crawler against a local server on 127.0.0.1 with injected faults: no internet.

The server serves the real MAL pages of ../shared/data/mal-pages (anime 1 and 5 of 2021, anime 21 of 2018) and real
portrait files of ../shared/data/characters-sample/portraits. MAL character pages exist there only for Momonga, so the
pages of the Cowboy Bebop characters are made from that real 2018 page: same markup, with the id, the name (from the
real characters page), a clearly synthetic biography and a sample portrait put in. The Jikan test serves small
synthetic JSON documents in the v4 shapes.
"""
import hashlib, json, os, signal, subprocess, sys, threading, time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from animepop.config import data_dir
from animepop.scrape import Crawler, read_jsonl

PAGES = data_dir()/"mal-pages"
PORTRAITS = sorted((data_dir()/"characters-sample"/"portraits").glob("*.jpg"))
TIMEOUT = 0.4      # the client's timeout in these tests; a "timeout" fault sleeps longer
FAST = dict(delay=0.0, backoff=0.01, max_wait=2.0, timeout=TIMEOUT, tries=3, progress=False)
BEBOP = {1: "Spike Spiegel", 2: "Faye Valentine", 3: "Jet Black", 16: "Edward Wong Hau Pepelu Tivrusky IV",
         8435: "Electra Ovilo", 4035: "Vincent Volaju"}


class Server(ThreadingHTTPServer):
    "Serves `routes` (path -> (status, content type, body)); `faults[path]` is consumed one fault per request."
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes, self.faults, self.log, self.lock = {}, defaultdict(deque), [], threading.Lock()
        self.hold = None  # (n, Event): the n-th request waits for the event (the test kills the client meanwhile)

    @property
    def url(self): return f"http://127.0.0.1:{self.server_port}"

    def paths(self, since=0): return [e["path"] for e in self.log[since:]]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args): pass

    def send(self, status, body, ctype="text/html; charset=utf-8", headers=(), cut=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype); self.send_header("Content-Length", str(len(body)))
        for k, v in headers: self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body if cut is None else body[:cut])

    def do_GET(self):
        srv = self.server
        with srv.lock:
            fault = srv.faults[self.path].popleft() if srv.faults[self.path] else None
            entry = dict(path=self.path, fault=fault, t=time.monotonic()); srv.log.append(entry)
            n = len(srv.log)
        if srv.hold and n == srv.hold[0]: srv.hold[1].wait(20)
        status, ctype, body = srv.routes.get(self.path, (404, "text/plain", b"Not Found"))
        try:
            if fault == "429": self.send(429, b"Too Many Requests", headers=[("Retry-After", "1")])
            elif fault in ("500", "503"): self.send(int(fault), b"Server Error")
            elif fault == "timeout": time.sleep(TIMEOUT * 3); self.send(status, body, ctype)
            elif fault == "drop": self.send(status, body, ctype, cut=len(body) // 3)  # connection closes mid-body
            else: self.send(status, body, ctype)
        except (BrokenPipeError, ConnectionResetError): pass
        entry["status"] = 200 if fault is None else fault


@pytest.fixture
def server():
    srv = Server()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    if srv.hold: srv.hold[1].set()
    srv.shutdown(); srv.server_close()


def character_page(cid: int, name: str, img_url: str) -> bytes:
    "The real 2018 page of Momonga with another id, name, a synthetic biography and portrait URL."
    soup = BeautifulSoup((PAGES/"2018/character_116281.html").read_bytes(), "lxml")
    soup.find("meta", property="og:url")["content"] = f"https://myanimelist.net/character/{cid}/x"
    left, right = soup.select("#content > table > tr > td")[0], soup.select("#content > table > tr > td")[-1]
    left.find("img")["src"] = img_url
    header = right.find(class_="normal_header")
    for s in header.find_all(string=True, recursive=False): s.extract()
    header.insert(0, name + " ")
    for sib in list(header.next_siblings):
        if getattr(sib, "get", None) and "normal_header" in (sib.get("class") or []): break
        sib.extract()
    header.insert_after(f"Synthetic test biography of {name}, character {cid}.")
    return str(soup).encode()


def portrait_path(cid): return f"/images/characters/test/{cid}.jpg"


def serve_bebop(srv: Server, corrupt=(16,)):
    "Anime 1 and 5 (real 2021 pages), their main characters' pages and portraits; character 4035 is missing (404)."
    srv.routes["/robots.txt"] = (200, "text/plain", b"User-agent: *\nDisallow: /anime/99999\n")
    for mal_id in (1, 5):
        srv.routes[f"/anime/{mal_id}"] = (200, "text/html", (PAGES/f"2021/anime_{mal_id}_details.html").read_bytes())
        srv.routes[f"/anime/{mal_id}/_/characters"] = (200, "text/html", (PAGES/f"2021/anime_{mal_id}_staff.html").read_bytes())
    for i, (cid, name) in enumerate(BEBOP.items()):
        if cid == 4035: continue
        srv.routes[f"/character/{cid}"] = (200, "text/html", character_page(cid, name, "https://cdn.myanimelist.net" + portrait_path(cid)))
        img = PORTRAITS[i].read_bytes()
        srv.routes[portrait_path(cid)] = (200, "image/jpeg", img[:len(img) // 3] if cid in corrupt else img)


def corpus(out: Path):
    "The crawl folder's content, order-free: anime, characters, portrait bytes."
    key = lambda r: json.dumps(r, sort_keys=True)
    return (sorted(map(key, read_jsonl(out/"anime.jsonl"))), sorted(map(key, read_jsonl(out/"characters.jsonl"))),
            {p.name: p.read_bytes() for p in (out/"portraits").iterdir()})


def test_crawl_with_faults(server, tmp_path):
    serve_bebop(server)
    one_piece = (PAGES/"2018/anime_21.html").read_bytes()
    server.routes["/anime/21"] = (200, "text/html", one_piece)
    server.routes["/anime/21/_/characters"] = (200, "text/html", one_piece[:one_piece.find(b"/character/")])  # truncated body
    for path, faults in {"/anime/1": ["429"], "/anime/5": ["timeout"], "/anime/5/_/characters": ["500", "500"],
                         "/anime/21": ["drop"], "/character/3": ["timeout"], "/character/8435": ["503"] * 3}.items():
        server.faults[path].extend(faults)
    t0 = time.monotonic()
    s = Crawler(tmp_path, base_url=server.url, **FAST).run([1, 5, 21, 99999])
    assert time.monotonic() - t0 < 15

    # 429: retried after the Retry-After second; 500 x2, timeouts and the dropped connection: retried until served
    t = [e["t"] for e in server.log if e["path"] == "/anime/1"]
    assert len(t) == 2 and t[1] - t[0] >= 0.95
    for path, n in {"/anime/5": 2, "/anime/5/_/characters": 3, "/anime/21": 2, "/character/3": 2, "/character/8435": 3}.items():
        assert server.paths().count(path) == n, path
    assert "/anime/99999" not in server.paths()  # robots.txt

    anime = {r["mal_id"]: r for r in read_jsonl(tmp_path/"anime.jsonl")}
    assert list(anime) == [1]  # 5 waits for Electra (503 to the end); 21's characters page is truncated
    assert anime[1]["title"] == "Cowboy Bebop" and anime[1]["score"] == 8.78 and anime[1]["voters"] == 610881
    chars = {(r["char_id"], r["mal_id"]): r for r in read_jsonl(tmp_path/"characters.jsonl")}
    assert set(chars) == {(c, m) for c in (1, 2, 3, 16) for m in (1, 5)}
    assert chars[(1, 1)]["name"] == "Spike Spiegel" and chars[(1, 1)]["role"] == "Main"
    assert chars[(1, 1)]["description"] == "Synthetic test biography of Spike Spiegel, character 1."
    assert chars[(1, 1)]["portrait"] == "portraits/1.jpg"
    assert (tmp_path/"portraits/1.jpg").read_bytes() == server.routes[portrait_path(1)][2]
    assert chars[(16, 1)]["portrait"] is None and chars[(16, 5)]["portrait"] is None  # corrupt JPEG
    assert sorted(p.name for p in (tmp_path/"portraits").iterdir()) == ["1.jpg", "2.jpg", "3.jpg"]
    assert server.paths().count(portrait_path(16)) == 1 and server.paths().count("/character/1") == 1

    fails = {(f["kind"], f.get("mal_id"), f.get("char_id")): f for f in read_jsonl(tmp_path/"failures.jsonl")}
    assert set(fails) == {("anime", 99999, None), ("anime", 21, None), ("character", 5, 4035), ("character", 5, 8435),
                          ("portrait", 1, 16), ("portrait", 5, 16)}
    assert "disallowed by robots.txt" in fails[("anime", 99999, None)]["error"]
    assert "/anime/21/_/characters: no character table" in fails[("anime", 21, None)]["error"]
    assert "HTTP 404" in fails[("character", 5, 4035)]["error"] and not fails[("character", 5, 4035)]["transient"]
    assert "HTTP 503" in fails[("character", 5, 8435)]["error"] and fails[("character", 5, 8435)]["transient"]
    assert "not a valid image" in fails[("portrait", 1, 16)]["error"]
    assert not (tmp_path/"cache"/hashlib.sha256(f"{server.url}/anime/21/_/characters".encode()).hexdigest()).exists()
    assert s["anime written"] == 1 and s["failed"] == 6 and s["cached"] >= 4

    # The server recovers: a second run finishes anime 5, asking only for what it lacks (a 404 is not cached)
    n = len(server.log)
    s2 = Crawler(tmp_path, base_url=server.url, **FAST).run([1, 5, 21, 99999])
    assert sorted(server.paths(n)) == sorted(["/robots.txt", "/anime/21/_/characters", "/character/4035", "/character/8435", portrait_path(8435)])
    assert [r["mal_id"] for r in read_jsonl(tmp_path/"anime.jsonl")] == [1, 5]
    assert (8435, 5) in {(r["char_id"], r["mal_id"]) for r in read_jsonl(tmp_path/"characters.jsonl")}
    assert s2["done before"] == 1 and s2["anime written"] == 1 and s2["fetched"] == 4


def _url_key(url): return hashlib.sha256(url.encode()).hexdigest()


@pytest.mark.parametrize("kill_at", [4, 9, 13])
def test_kill_and_resume(server, tmp_path, kill_at):
    serve_bebop(server)
    ref = tmp_path/"ref"
    Crawler(ref, base_url=server.url, **FAST).run([1, 5])
    n0 = len(server.log)

    # A crawl killed (SIGKILL) while it waits for the kill_at-th response
    out, release = tmp_path/"out", threading.Event()
    server.hold = (n0 + kill_at, release)
    cmd = [sys.executable, "-c", "from animepop.scrape import crawl_main; crawl_main()", "--ids", "1,5", "--out", str(out),
           "--base-url", server.url, "--delay", "0", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while len(server.log) < n0 + kill_at and proc.poll() is None and time.monotonic() < deadline: time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL); proc.wait(10); release.set()
    run1 = server.paths(n0)
    in_flight = run1[-1]
    cached = {p.name for p in (out/"cache").iterdir()}
    portraits = {p.stem for p in (out/"portraits").iterdir()}
    assert len(read_jsonl(out/"anime.jsonl")) < 2

    # Run the same command again: it finishes with exactly the reference corpus, asking for nothing it had
    n1 = len(server.log)
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert "summary:" in r.stderr.decode()
    run2 = server.paths(n1)
    for path in run2:
        assert _url_key(server.url + path) not in cached, f"refetched cached page {path}"
        if path.startswith("/images/"): assert Path(path).stem not in portraits, f"refetched stored portrait {path}"
    uncacheable = {"/robots.txt", "/character/4035", portrait_path(16)}  # read each run; a 404; a corrupt JPEG
    both = [p for p in run1 + run2 if p not in uncacheable]
    assert all(both.count(p) == 1 or p == in_flight for p in both)
    assert corpus(out) == corpus(ref)
    keys = [(r["char_id"], r["mal_id"]) for r in read_jsonl(out/"characters.jsonl")]
    assert len(read_jsonl(out/"anime.jsonl")) == 2 and len(keys) == len(set(keys)) == 9  # 4 + 5 main characters (4035 is a 404)


def jikan_routes(srv: Server):
    "Synthetic Jikan v4 documents for anime 7 with two main characters and a supporting one."
    def doc(d): return (200, "application/json", json.dumps({"data": d}).encode())
    cdn = "https://cdn.myanimelist.net/images/characters/9/"
    srv.routes["/v4/anime/7/full"] = doc(dict(
        mal_id=7, title="Synthetic Anime", title_english="Synthetic", synopsis="A synthetic synopsis for the test.",
        score=7.25, scored_by=1234, type="TV", source="Original", episodes=12, duration="24 min per ep", rating="PG-13 - Teens 13 or older",
        season="spring", year=2004, aired={"prop": {"from": {"year": 2004}}}, genres=[{"name": "Drama"}], themes=[{"name": "Space"}],
        demographics=[], studios=[{"name": "Studio S"}], producers=[{"name": "P1"}, {"name": "P2"}],
        relations=[{"relation": "Sequel", "entry": [{"mal_id": 8, "type": "anime", "name": "S2"}, {"mal_id": 3, "type": "manga", "name": "M"}]}]))
    srv.routes["/v4/anime/7/characters"] = doc([
        {"character": {"mal_id": 70, "name": "Hero, Synthetic"}, "role": "Main"},
        {"character": {"mal_id": 71, "name": "Nobody, Synthetic"}, "role": "Main"},
        {"character": {"mal_id": 72, "name": "Side, Synthetic"}, "role": "Supporting"}])
    srv.routes["/v4/characters/70/full"] = doc(dict(mal_id=70, name="Synthetic Hero", about="A synthetic biography.",
                                                    images={"jpg": {"image_url": cdn + "70.jpg"}}))
    srv.routes["/v4/characters/71/full"] = doc(dict(mal_id=71, name="Synthetic Nobody", about=None,
                                                    images={"jpg": {"image_url": cdn + "71.jpg"}}))
    srv.routes["/images/characters/9/70.jpg"] = (200, "image/jpeg", PORTRAITS[0].read_bytes())
    srv.faults["/v4/anime/7/full"].append("429")


def test_jikan_backend(server, tmp_path):
    jikan_routes(server)
    s = Crawler(tmp_path, source="jikan", base_url=server.url + "/v4", **FAST).run([7])
    assert server.paths() == ["/v4/anime/7/full", "/v4/anime/7/full", "/v4/anime/7/characters", "/v4/characters/70/full",
                              "/images/characters/9/70.jpg", "/v4/characters/71/full"]  # no robots.txt, no portrait for 71
    [a] = read_jsonl(tmp_path/"anime.jsonl")
    assert (a["mal_id"], a["title"], a["score"], a["voters"], a["mean_score"]) == (7, "Synthetic Anime", 7.25, 1234, None)
    assert (a["genres"], a["producers"], a["related"], a["episode_minutes"]) == (["Drama", "Space"], ["P1", "P2"], [{"mal_id": 8, "relation": "SEQUEL"}], 24)
    chars = read_jsonl(tmp_path/"characters.jsonl")
    assert [(c["char_id"], c["name"], c["role"], c["description"], c["portrait"]) for c in chars] == [
        (70, "Synthetic Hero", "Main", "A synthetic biography.", "portraits/70.jpg"), (71, "Synthetic Nobody", "Main", None, None)]
    assert chars[0]["portrait_url"] == "https://cdn.myanimelist.net/images/characters/9/70.jpg"
    assert read_jsonl(tmp_path/"failures.jsonl") == [] and s["skipped"] == 1 and s["anime written"] == 1


def test_crawl_cli_bad_input(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-c", "from animepop.scrape import crawl_main; crawl_main()", *a],
                                    capture_output=True, text=True, timeout=60)
    for args, msg in [(["--ids", "1,x"], "malformed anime ids: x"), (["--ids-file", str(tmp_path/"none.txt")], "none.txt"),
                      (["--ids", "1", "--source", "api"], "unknown --source 'api'")]:
        r = run(*args, "--out", str(tmp_path/"o"))
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and msg in r.stderr and "Traceback" not in r.stderr
