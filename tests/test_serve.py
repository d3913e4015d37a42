"""``ssl-ws serve``: the JSON API answers as ``ssl-ws query`` does, refuses bad requests with one
JSON line, runs as a real server on a loopback port, and its web page works in a real headless
browser (Chromium through chromedriver's WebDriver protocol; skipped where Chromium is absent)."""

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from test_corrupt_inputs import _encoder, _store, run_cli  # noqa: E402
from ssl_ws.cli import main  # noqa: E402
from ssl_ws.retrieve.searcher import Searcher  # noqa: E402
from ssl_ws.retrieve.service import create_app  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    store = _store(d / "store")
    meta = json.loads((d / "store" / "meta.json").read_text())
    meta["fit"] = {"recipe": "siren", "steps": 20, "seed": 0}  # a recipe for image queries (short: a test)
    (d / "store" / "meta.json").write_text(json.dumps(meta))
    enc = _encoder(d / "encoder.pt")
    assert main(["index", enc, store, "--out", str(d / "index"), "--quiet"]) == 0
    return {"dir": d, "store": store, "enc": enc, "index": str(d / "index")}


@pytest.fixture(scope="module")
def client(setup):
    app = create_app(Searcher.open(setup["index"]), max_body=1 << 20)
    return TestClient(app, raise_server_exceptions=False)


def _cli_lines(capsys, *args):
    rc, out, err = run_cli(capsys, *args)
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _png(arr01):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.asarray(arr01) * 255 + 0.5).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def test_health_info_and_the_page(client, setup):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    index = Searcher.open(setup["index"]).index
    assert info["size"] == len(index) and info["class_names"] == ["small", "medium", "large"]
    assert info["image_size"] == [8, 8] and info["n_params"] == 2 * 8 + 8 + 8 * 8 + 8 + 8 + 1
    page = client.get("/")
    assert page.status_code == 200 and "ssl_ws retrieval" in page.text
    assert client.get("/docs").status_code == 200 and "/query" in client.get("/openapi.json").text


def test_id_queries_answer_as_the_cli_does(client, setup, tmp_path, capsys):
    ids = [54, 60, 3]  # indexed (test split) and not indexed (row 3 is a training row)
    (tmp_path / "ids.txt").write_text(" ".join(map(str, ids)))
    for extra, body in (([], {}), (["--exclude-views"], {"exclude_views": True}),
                        (["--filter-class", "large"], {"filter_class": "large"})):
        want = _cli_lines(capsys, "query", setup["index"], "--ids-file", tmp_path / "ids.txt", "-k", 5, *extra)
        got = client.post("/query", json={"ids": ids, "k": 5, **body})
        assert got.status_code == 200, got.text
        assert got.json()["results"] == want


def test_param_and_image_queries_answer_as_the_cli_does(client, setup, tmp_path, capsys):
    from ssl_ws.data import load_store
    from ssl_ws.retrieve.gallery import render_rows

    store = load_store(setup["store"])
    row = 60
    got = client.post("/query", json={"params": [store.params[row].tolist()], "k": 4}).json()["results"][0]
    want = _cli_lines(capsys, "query", setup["index"], "--ids-file", _ids(tmp_path, [row]), "-k", 4, "--keep-self")[0]
    assert [n["row"] for n in got["neighbours"]] == [n["row"] for n in want["neighbours"]]
    assert [n["similarity"] for n in got["neighbours"]] == pytest.approx([n["similarity"] for n in want["neighbours"]],
                                                                         abs=1e-5)
    img = render_rows(store, [row])[0, 0].numpy()
    (tmp_path / "q.png").write_bytes(_png(img))
    rc, _, err = run_cli(capsys, "query", setup["index"], "--image", tmp_path / "q.png", "-k", 4,
                         "--json", tmp_path / "q.json")
    assert rc == 0, err
    want = json.loads((tmp_path / "q.json").read_text())["results"]["neighbours"]
    b64 = base64.b64encode(_png(img)).decode()
    got = client.post("/query", json={"images": ["data:image/png;base64," + b64], "k": 4}).json()["results"]
    _same(got[0]["neighbours"], want)
    # a batch: the images of one request are fitted together, as those of `query --image FOLDER`
    folder = tmp_path / "imgs"
    folder.mkdir()
    pngs = [_png(render_rows(store, [r])[0, 0].numpy()) for r in (54, 61)]
    for i, data in enumerate(pngs):
        (folder / f"{i}.png").write_bytes(data)
    want = _cli_lines(capsys, "query", setup["index"], "--image", folder, "-k", 4)
    got = client.post("/query", json={"images": [base64.b64encode(p).decode() for p in pngs], "k": 4}).json()
    assert len(got["results"]) == 2
    for g, w in zip(got["results"], want):
        _same(g["neighbours"], w["neighbours"])


def _same(got, want):
    strip = lambda ns: [{k: v for k, v in n.items() if k != "similarity"} for n in ns]  # noqa: E731
    assert strip(got) == strip(want)
    assert [n["similarity"] for n in got] == pytest.approx([n["similarity"] for n in want], abs=1e-5)


def _ids(tmp_path, ids):
    p = tmp_path / "ids1.txt"
    p.write_text(" ".join(map(str, ids)))
    return p


def test_thumbnails(client):
    r = client.get("/inr/60.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    assert client.get("/inr/99999.png").status_code == 400


@pytest.mark.parametrize("body,status,want", [
    ({}, 400, "give at least one query"),
    ({"ids": [99999]}, 400, "out of range"),
    ({"ids": [-1]}, 400, "row id -1 is out of range"),
    ({"ids": [True]}, 422, "ids.0"),
    ({"ids": ["3"]}, 422, "ids.0"),
    ({"ids": [3], "k": 0}, 422, "k: Input should be greater than or equal to 1"),
    ({"ids": [3], "k": 10**9}, 422, "k: Input should be less than or equal to"),
    ({"ids": [3], "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
    ({"ids": [3], "filter_class": "giraffe"}, 400, "filter_class 'giraffe' is neither a class name"),
    ({"params": [[0.1, 0.2]]}, 400, "params must be [n, 105]"),
    ({"params": [[0.1] * 105, [0.1] * 104]}, 400, "params must be"),
    ({"images": ["not base64!"]}, 400, "images[0] is not base64"),
    ({"images": [base64.b64encode(b"GIF89a broken").decode()]}, 400, "cannot read images[0]"),
])
def test_bad_requests_are_one_json_line(client, body, status, want):
    r = client.post("/query", json=body)
    assert r.status_code == status, r.text
    err = r.json()
    assert list(err) == ["error"] and want in err["error"] and "\n" not in err["error"] and "Traceback" not in r.text


def test_nan_oversized_and_malformed_bodies(client):
    nan = '{"params": [[' + ", ".join(["NaN"] + ["0.1"] * 104) + "]]}"
    r = client.post("/query", content=nan, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "finite" in r.json()["error"]
    r = client.post("/query", content="{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and list(r.json()) == ["error"]
    r = client.post("/query", content=b"x" * (2 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over the limit" in r.json()["error"]
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buf, format="PNG")  # tiny on the wire, 25 Mpx decoded
    r = client.post("/query", json={"images": [base64.b64encode(buf.getvalue()).decode()]})
    assert r.status_code == 400 and "pixels, over the limit" in r.json()["error"]
    r = client.post("/query", json={"images": [base64.b64encode(_png(np.zeros((5, 5)))).decode()]})
    assert r.status_code == 400 and "resize" in r.json()["error"]


def test_serve_refuses_an_index_whose_store_changed(setup, tmp_path, capsys):
    store = tmp_path / "store"
    shutil.copytree(setup["store"], store)
    assert main(["index", setup["enc"], str(store), "--out", str(tmp_path / "index"), "--quiet"]) == 0
    np.save(store / "labels.npy", (np.load(store / "labels.npy") + 1) % 3)
    rc, _, err = run_cli(capsys, "serve", tmp_path / "index", "--port", _free_port())
    assert rc == 2 and err.startswith("error: ") and "changed since the index was built" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(setup):
    """``ssl-ws serve`` as a user starts it, on a free loopback port."""
    import httpx

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ssl_ws.cli", "serve", setup["index"], "--port", str(port),
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"server did not start: {proc.stdout.read()}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_a_real_server_on_a_loopback_port(server, client):
    import httpx

    body = {"ids": [54, 60], "k": 6, "exclude_views": True}
    r = httpx.post(server + "/query", json=body, timeout=30)
    assert r.status_code == 200 and r.json() == client.post("/query", json=body).json()
    r = httpx.post(server + "/query", json={"ids": [54], "k": -3}, timeout=30)
    assert r.status_code == 422 and list(r.json()) == ["error"]


# ------------------------------------------------------------------ the page in a real browser
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"


class WebDriver:
    """The few W3C WebDriver commands the test needs, spoken to chromedriver over HTTP."""

    def __init__(self):
        import httpx

        self.port = _free_port()
        self.proc = subprocess.Popen([DRIVER, f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        deadline = time.time() + 30
        while True:
            try:
                if self.http.get("/status").json()["value"]["ready"]:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            assert time.time() < deadline, "chromedriver did not start"
            time.sleep(0.2)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1100,800"]
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": args}}}}
        self.session = self._ok(self.http.post("/session", json=caps))["sessionId"]

    def _ok(self, r):
        value = r.json().get("value")
        assert r.status_code == 200, value
        return value

    def cmd(self, method, path, body=None):
        return self._ok(self.http.request(method, f"/session/{self.session}{path}", json=body))

    def go(self, url):
        self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait(self, script, timeout=60):
        deadline = time.time() + timeout
        while not self.js(script):
            assert time.time() < deadline, f"timed out waiting for: {script}"
            time.sleep(0.2)

    def click(self, css):
        el = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        self.cmd("POST", f"/element/{list(el.values())[0]}/click", {})

    def screenshot(self) -> bytes:
        return base64.b64decode(self.cmd("GET", "/screenshot"))

    def quit(self):
        try:
            self.http.delete(f"/session/{self.session}")
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=20)


@pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
                    reason="needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
def test_the_web_page_in_a_headless_browser(server, tmp_path):
    browser = WebDriver()
    try:
        browser.go(server + "/")
        browser.wait("return document.body.dataset.ready === '1'")
        browser.js("document.getElementById('row').value = arguments[0];", 60)
        browser.click("#search-id")
        browser.wait("return document.getElementById('results').dataset.count === '10'")
        tiles = browser.js("return [...document.querySelectorAll('#results .tile')].map(t => t.innerText)")
        assert len(tiles) == 11 and tiles[0].startswith("query")
        # every thumbnail loaded (rendered from the INR's weights by /inr/{id}.png)
        browser.wait("return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)")
        # a drawing, fitted on the fly
        browser.js("const c = document.getElementById('pad').getContext('2d'); c.fillStyle = '#fff';"
                   "c.fillRect(40, 20, 60, 100);")
        browser.click("#search-pad")
        browser.wait("return document.getElementById('results').dataset.count === '10'")
        assert browser.js("return document.getElementById('error').textContent") == ""
        shot = browser.screenshot()
        assert shot[:4] == b"\x89PNG"
        out = os.environ.get("SSL_WS_SCREENSHOT") or str(tmp_path / "serve.png")
        with open(out, "wb") as fh:
            fh.write(shot)
    finally:
        browser.quit()
