"""The docs site (nbs/09b_docs.ipynb): pages built from the real notebooks with their results, every link resolving;
then (slow) the site read in Chromium and 08_pitch opened in JupyterLab, with screenshots and a summary of what they saw.

The slow checks drive Debian's chromium through Playwright (a pinned dev dependency: its own browser download does
not work offline). Without chromium they are skipped, with the reason (`pytest -rs` prints it); without Playwright
they fail, since `make install` installs it. Screenshots and summary.json go to $ANIMEPOP_SCREENSHOTS, else to a
temporary folder whose path the tests print."""
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from nbconvert import MarkdownExporter
from nbconvert.preprocessors import ExecutePreprocessor, TagRemovePreprocessor

import animepop.docs as docs
from animepop.config import ROOT
from animepop.reproduce import build_manifest, run_notebook

BIN = Path(sys.executable).parent
OWN_URL = "https://animepop.github.io/animepop/"


def test_pages_from_figures_without_runs(tmp_path, monkeypatch):
    "A fresh clone (no runs/): each page shows every table and figure its notebook wrote in figures/, inline."
    monkeypatch.setattr(docs, "RUNS", tmp_path/"no-runs")
    monkeypatch.delenv("ANIMEPOP_FIGURES_DIR", raising=False)
    site = tmp_path/"site"
    record = docs.build_static(site, only=["index", "01_corpus", "07_experiments"], proc=tmp_path/"proc")
    assert record["builder"] == "static" and [p["page"] for p in record["pages"]] == ["index.html", "corpus.html", "experiments.html"]
    assert docs.check_site(site, OWN_URL) == []
    for name, page in (("01_corpus", "corpus.html"), ("07_experiments", "experiments.html")):
        html = (site/page).read_text()
        assert "No executed copy of this notebook under <code>runs/</code>" in html
        arts = docs.notebook_artifacts(name, ROOT/"figures")
        assert arts, f"figures/manifest.json lists no artifact of {name}"
        for a in arts:
            block = re.search(rf'<figure class="artifact" data-artifact="{a["artifact"]}">(.*?)</figure>', html, re.S)
            assert block, f"{a['artifact']} is not on {page}"
            for f in a["files"]:
                assert (site/"figures"/f).read_bytes() == (ROOT/"figures"/f).read_bytes()
                if f.endswith(".png"): assert f'src="figures/{f}"' in block[1]
            if any(f.endswith(".csv") for f in a["files"]): assert "<table" in block[1], a["artifact"]
    home = (site/"index.html").read_text()
    assert "Table 11: the paper" in home and home.count("<table") >= 2  # the home page ran, reading figures/
    nav = BeautifulSoup(home, "lxml").select("nav.site-nav li a")
    assert [(a["href"], a.get("aria-current")) for a in nav] == [("index.html", "page"), ("corpus.html", None), ("experiments.html", None)]


def test_pages_from_an_executed_copy(tmp_path, monkeypatch, shared_data):
    "After a run: cell outputs from its executed copy, its tables and figures, and a note naming the run."
    runs, figs = tmp_path/"runs", tmp_path/"figures"
    shutil.copytree(ROOT/"figures", figs)  # as `animepop_reproduce --only 02_score --out` over earlier results
    monkeypatch.setenv("ANIMEPOP_FIGURES_DIR", str(figs))  # the kernel papermill starts inherits it
    run_dir = runs/"20990101-000000"; run_dir.mkdir(parents=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    wall = run_notebook(ROOT/"nbs/02_score.ipynb", run_dir, {"seed": 42}, "cpu")
    run = {"command": "animepop_reproduce --only 02_score (test)", "git_commit": "0123456789abcdef",
           "settings": {"profile": "cpu", "seed": 42}, "started": started}
    (run_dir/"params.json").write_text(json.dumps(run))
    (figs/"manifest.json").write_text(json.dumps(build_manifest(figs, run, {"02_score": wall})))
    monkeypatch.setattr(docs, "RUNS", runs)
    site = tmp_path/"site"
    record = docs.build_static(site, only=["index", "02_score"], proc=tmp_path/"proc")
    assert docs.check_site(site, OWN_URL) == []
    score = next(p for p in record["pages"] if p["page"] == "score.html")["results"]
    assert score["run"]["executed"] == str(run_dir/"02_score.ipynb") and score["same_run"] and score["with_outputs"] > 0
    html = (site/"score.html").read_text()
    assert f"executed copy <code>{run_dir/'02_score.ipynb'}</code>" in html and "written by that same run" in html
    assert "# Parameters" in html                                  # papermill's injected parameters are on the page
    assert 'data-artifact="label_weighted_vs_mal_scatter"' in html and (site/"figures/label_weighted_vs_mal_scatter.png").exists()


def test_readme_links_resolve(tmp_path):
    "README.md as `make readme` makes it from index.ipynb: every relative link is a file of the clone; none to doc_host."
    ex = MarkdownExporter()
    for pre in (ExecutePreprocessor(kernel_name="python3"), TagRemovePreprocessor(remove_input_tags={"remove_input"}),
                docs.ReadmeLinks()):
        ex.register_preprocessor(pre, enabled=True)
    md, _ = ex.from_filename(str(ROOT/"nbs/index.ipynb"), resources={"metadata": {"path": str(ROOT/"nbs")}})
    links = [m["url"] for m in docs._MD_LINK.finditer(md)]
    assert len(links) > 15 and not [u for u in links if u.startswith(OWN_URL)]
    missing = [u for u in links if not docs._external(u) and not (ROOT/u.partition("#")[0]).exists()]
    assert missing == [], missing
    assert "nbs/08_pitch.ipynb" in links and "figures/table11_results.md" in links


def test_check_fails_on_a_broken_link(tmp_path):
    (tmp_path/"index.html").write_text('<a href="missing.html">x</a><a href="https://animepop.github.io/animepop/x.html">y</a>')
    (tmp_path/"build.json").write_text(json.dumps({"builder": "static"}))
    done = subprocess.run([BIN/"animepop_docs", "--check", "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "broken link: index.html: missing.html: no such file" in done.stderr
    assert "index.html: https://animepop.github.io/animepop/x.html: points to" in done.stderr
    assert "Traceback" not in done.stderr


# --- slow: a real browser ---------------------------------------------------------------------------------------
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
KEY_PAGES = ("index.html", "corpus.html", "experiments.html", "pitch.html")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    "A headless Chromium (Debian's) driven by Playwright, with a fresh profile."
    exe = os.environ.get("ANIMEPOP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        pytest.skip(f"no chromium at {exe}: install Debian's (apt-get install -y chromium) or set ANIMEPOP_CHROMIUM")
    try: from playwright.sync_api import sync_playwright
    except ImportError as e: pytest.fail(f"playwright is a dev dependency (settings.ini); run make install: {e}")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path_factory.mktemp("chromium-profile")), executable_path=exe,
                                                   headless=True, args=CHROMIUM_ARGS, viewport={"width": 1366, "height": 900})
        ctx.set_default_timeout(60_000)
        yield ctx
        ctx.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    d = Path(os.environ.get("ANIMEPOP_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots and summary.json in {d}")
    return d


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope="module")
def served_site(tmp_path_factory):
    "The whole site, built as `make docs` builds it here (static), served on 127.0.0.1."
    tmp = tmp_path_factory.mktemp("docs")
    record = docs.build_static(tmp/"_docs", proc=tmp/"_proc")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(tmp/"_docs")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/", record
    server.shutdown()


def _save(summary_dir: Path, key: str, value) -> None:
    f = summary_dir/"summary.json"
    data = json.loads(f.read_text()) if f.exists() else {}
    f.write_text(json.dumps({**data, key: value}, indent=1) + "\n")


@pytest.mark.slow
def test_site_in_chromium(browser, served_site, screenshots):  # browser first: no chromium skips before the build
    base, record = served_site
    page, seen, ids, hrefs, bad_requests = browser.new_page(), {}, {}, set(), []
    page.on("requestfailed", lambda r: bad_requests.append(f"{r.url}: {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and bad_requests.append(f"{r.url}: HTTP {r.status}"))
    page.on("request", lambda r: r.url.startswith(("http:", "https:")) and not r.url.startswith(base)
            and bad_requests.append(f"{r.url}: leaves the site"))
    for p in record["pages"]:
        page.goto(base + p["page"], wait_until="load")
        title = page.title()
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
        seen[p["page"]] = {"title": title, "h1": page.inner_text("h1.title"), "tables": page.locator("table").count(),
                           "images": len(images), "images_loaded": sum(w > 0 for _, w in images),
                           "artifacts": page.locator("figure.artifact").count()}
        assert p["title"] in title and seen[p["page"]]["h1"] == p["title"]
        assert [src for src, w in images if w == 0] == [], f"images that did not load on {p['page']}"
        for name in (p["results"] or {}).get("artifacts", []):
            assert page.locator(f'figure.artifact[data-artifact="{name}"]').count() == 1, f"{name} not on {p['page']}"
        ids[p["page"]] = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        hrefs |= {h for h in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)") if h.startswith(base)}
        if p["page"] in KEY_PAGES:
            page.screenshot(path=str(screenshots/f"site-{p['page']}.png"))
            first = page.locator("figure.artifact").first
            if first.count():
                first.scroll_into_view_if_needed()
                page.screenshot(path=str(screenshots/f"site-{p['page'][:-5]}-results.png"))
    broken = []
    for href in sorted(hrefs):
        url, _, frag = href.partition("#")
        name = url[len(base):] or "index.html"
        if name in ids:
            if frag and frag not in ids[name]: broken.append(f"{href}: no such anchor")
        elif browser.request.get(url).status != 200: broken.append(f"{href}: not served")
    _save(screenshots, "site", {"base": base, "pages": seen, "links_checked": len(hrefs), "broken": broken,
                                "bad_requests": bad_requests})
    print(json.dumps(seen, indent=1))
    assert broken == [] and bad_requests == []
    for key in KEY_PAGES: assert seen[key]["tables"] > 0, key
    for key in ("corpus.html", "experiments.html"): assert seen[key]["images_loaded"] > 0, key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as r: return json.loads(r.read())


@pytest.mark.slow
def test_jupyterlab_opens_pitch_notebook(browser, screenshots, tmp_path):
    "JupyterLab on 127.0.0.1 with a token: 08_pitch renders and its python3 kernel reaches idle; the server then stops."
    token, port = secrets.token_hex(16), _free_port()
    base, auth = f"http://127.0.0.1:{port}", f"token={token}"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path/"runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path/"config")}
    log = open(tmp_path/"lab.log", "w")
    lab = subprocess.Popen([BIN/"jupyter-lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
                            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}",
                            f"--LabApp.workspaces_dir={tmp_path/'workspaces'}",
                            "--ServerApp.shutdown_no_activity_timeout=300",  # stops by itself if this test dies
                            *(["--allow-root"] if os.geteuid() == 0 else [])],
                           stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            assert lab.poll() is None, f"jupyter lab exited: {(tmp_path/'lab.log').read_text()[-3000:]}"
            try: _get_json(f"{base}/api/status?{auth}"); break
            except OSError: pass
            assert time.time() < deadline, "jupyter lab did not answer within 120 s"
            time.sleep(1)
        page = browser.new_page()
        page.goto(f"{base}/lab/tree/nbs/08_pitch.ipynb?{auth}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        try:  # the notebook names no kernel (nbdev_clean keeps no metadata): Lab offers its default, python3
            page.wait_for_selector(".jp-Dialog", timeout=10_000)
            dialog = page.inner_text(".jp-Dialog")
            page.click(".jp-Dialog .jp-mod-accept")
        except Exception: dialog = None
        state, deadline = None, time.time() + 120
        while time.time() < deadline:
            sessions = [s for s in _get_json(f"{base}/api/sessions?{auth}") if s["path"].endswith("nbs/08_pitch.ipynb")]
            state = sessions and (sessions[0]["kernel"]["name"], sessions[0]["kernel"]["execution_state"])
            if state == ("python3", "idle"): break
            time.sleep(1)
        page.wait_for_function("() => /\\| Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText ?? '')",
                               timeout=60_000)
        status = page.inner_text("#jp-main-statusbar")
        indicator = page.get_attribute(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator", "data-status")
        heading = page.inner_text(".jp-NotebookPanel .jp-MarkdownOutput h1")
        cells = page.locator(".jp-NotebookPanel .jp-Cell").count()
        page.screenshot(path=str(screenshots/"lab-08_pitch.png"))
        seen = {"url": f"{base}/lab/tree/nbs/08_pitch.ipynb", "heading": heading, "cells_rendered": cells,
                "kernel": state, "status_bar": " ".join(status.split()), "execution_indicator": indicator,
                "kernel_dialog": " ".join(dialog.split()) if dialog else None}
        _save(screenshots, "lab", seen)
        print(json.dumps(seen, indent=1))
        assert heading.startswith("Pitch scorer") and cells >= 8  # the overview and result cells of 08_pitch
        assert state == ("python3", "idle") and "Python 3 (ipykernel) | Idle" in status and indicator == "idle"
    finally:
        try: urllib.request.urlopen(urllib.request.Request(f"{base}/api/shutdown?{auth}", method="POST"), timeout=10)
        except OSError: pass
        try: lab.wait(30)
        except subprocess.TimeoutExpired: os.killpg(lab.pid, signal.SIGKILL); lab.wait(10)
        log.close()
