"""Open the built book in a real browser (headless Chromium) and check what a reader would see.

    python tests/browser/check_site.py [--site _build/html] [--toc _toc.yml]

Serves the site on a free localhost port, drives Debian's Chromium through chromedriver (the W3C
WebDriver protocol, spoken here over plain HTTP: no extra package) and, for every page listed in
_toc.yml, checks that it loads, that its figures are there with a non-zero size, that no cell
output shows a traceback, and that search finds the page. Then every same-origin link of every
page is fetched (HTTP 200, and `#anchor` targets exist). Screenshots of two pages go to
_build/screenshots/. One line per check; exit status 1 when any check fails.
Install the browser with `scripts/install_browser.sh` (Debian: chromium, chromium-driver).
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1000", "--hide-scrollbars"]
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
HIDDEN_TAGS = {"remove-cell", "remove-output", "remove_cell", "remove_output"}
STOPWORDS = {"about", "their", "there", "which", "where", "these", "those", "without", "other"}


class Report:
    """Collect one line per check and whether any failed."""

    def __init__(self) -> None:
        self.failed = 0
        self.passed = 0

    def check(self, ok: bool, name: str, detail: str = "") -> bool:
        """Print `PASS name detail` or `FAIL name detail` and count it."""
        print(f"{'PASS' if ok else 'FAIL'} {name}{'  ' + detail if detail else ''}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def free_port() -> int:
    """Return a TCP port on localhost that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `site` on a free localhost port from a daemon thread; return (server, base URL)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # one line per check, not per request
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address) -> None:  # the browser hung up early
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = Server(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class Browser:
    """A headless Chromium session through chromedriver's W3C WebDriver HTTP API."""

    def __init__(self, profile_dir: str, timeout: float = 20) -> None:
        self.port = free_port()
        self.timeout = timeout
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._call("GET", "/status")["value"].get("ready"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.driver.poll() is not None:
                self.close()
                raise RuntimeError(f"{CHROMEDRIVER} did not start; run scripts/install_browser.sh")
            time.sleep(0.1)
        options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile_dir}"]}
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
                                                 "pageLoadStrategy": "normal",
                                                 "goog:chromeOptions": options}}}
        self.session = self._call("POST", "/session", caps)["value"]["sessionId"]
        self._call("POST", f"/session/{self.session}/timeouts",
                   {"pageLoad": int(timeout * 1000), "script": int(timeout * 1000)})

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        """Send one WebDriver command and return its decoded JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout + 10) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"WebDriver {method} {path}: {error.read()[:500]!r}") from None

    def get(self, url: str) -> None:
        """Open `url` and wait until it has loaded."""
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def js(self, script: str, *args):
        """Run `script` (a function body; arguments in `arguments`) and return its result."""
        return self._call("POST", f"/session/{self.session}/execute/sync",
                          {"script": script, "args": list(args)})["value"]

    def wait_for(self, script: str, timeout: float = 10):
        """Return the first truthy result of `script`, polled until `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(script)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    def screenshot(self, path: Path) -> None:
        """Save the visible part of the page as a PNG."""
        png = self._call("GET", f"/session/{self.session}/screenshot")["value"]
        path.write_bytes(base64.b64decode(png))

    def close(self) -> None:
        """End the session and stop chromedriver (and with it Chromium)."""
        try:
            if getattr(self, "session", None):
                self._call("DELETE", f"/session/{self.session}")
        except (OSError, RuntimeError):
            pass
        self.driver.terminate()
        try:
            self.driver.wait(5)
        except subprocess.TimeoutExpired:
            self.driver.kill()


def toc_pages(toc: Path) -> list[str]:
    """Return the documents of _toc.yml in reading order (root first), without suffixes."""
    spec = yaml.safe_load(toc.read_text())
    pages = [spec["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            for key in ("chapters", "sections", "parts"):
                walk(entry.get(key))

    walk(spec.get("parts", []))
    walk(spec.get("chapters", []))
    return [str(Path(p).with_suffix("")) if Path(p).suffix in (".md", ".ipynb") else p
            for p in pages]


def expected_figures(root: Path, doc: str) -> int:
    """Return how many image outputs the notebook `doc` stores in cells the book shows."""
    path = root / f"{doc}.ipynb"
    if not path.exists():
        return 0
    count = 0
    for cell in json.loads(path.read_text()).get("cells", []):
        if HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for output in cell.get("outputs", []):
            if any(m in output.get("data", {}) for m in IMAGE_MIMES):
                count += 1
    return count


def search_term(title: str) -> str | None:
    """Return a distinctive word of a page title to search for (the longest one)."""
    words = [w for w in re.findall(r"[A-Za-z][a-z]{4,}", title) if w.lower() not in STOPWORDS]
    if not words and re.search(r"[\u4e00-\u9fff]", title):  # a Chinese title: its longest word
        import jieba  # what Sphinx segments Chinese with (html_search_language: zh)

        words = [w for w in jieba.cut_for_search(title) if re.fullmatch(r"[\u4e00-\u9fff]{2,}", w)]
    return max(words, key=len) if words else None


PAGE_STATE = r"""
const art = document.querySelector('article') || document.querySelector('main') || document.body;
const imgs = Array.from(art.querySelectorAll('.cell_output img, .output img'));
const allImgs = Array.from(art.querySelectorAll('img'));
const outputs = Array.from(art.querySelectorAll('.cell_output, .output'));
const tracebacks = outputs.filter(o => o.matches('.traceback, .error') ||
    o.querySelector('.traceback, .output.error') ||
    /Traceback \(most recent call last\)/.test(o.innerText));
const links = Array.from(document.querySelectorAll('a[href], link[href], img[src], script[src]'))
    .map(e => e.href || e.src).filter(Boolean);
const pasted = Array.from(art.querySelectorAll('p span.text_plain, li span.text_plain, ' +
                                                'td span.text_plain, span.pasted-text'));
const quoted = pasted.map(e => e.innerText.trim()).filter(t => /^['‘"“].*['’"”]$/.test(t));
const code = Array.from(art.querySelectorAll('.cell_input pre, div.highlight pre'))
    .map(e => e.innerText);
const machinery = code.filter(t => /NBVAL|^\s*assert\b|\bglue\(/m.test(t))
    .map(t => t.split('\n').find(l => /NBVAL|^\s*assert\b|\bglue\(/.test(l)));
const prose = Array.from(art.querySelectorAll('p, li, td, th, dd, dt, h1, h2, h3, figcaption'))
    .filter(e => !e.closest('pre, code, .cell_output, .highlight, dl.py'));
const markup = prose.map(e => { const c = e.cloneNode(true);  // the words, without inline code
                                c.querySelectorAll('code, pre, .pre').forEach(x => x.remove());
                                return c.textContent; })
    .filter(t => /\*\*|\{(ref|glue|glue:text|term|cite|numref|doc)\}`/.test(t))
    .map(t => t.slice(0, 80));
const h1 = art.querySelector('h1');
return {title: h1 ? h1.innerText.replace(/[#¶]/g, '').trim() : document.title,
        text: art.innerText.length, outputs: outputs.length,
        figures: imgs.length,
        brokenImages: allImgs.filter(i => !(i.complete && i.naturalWidth > 0 &&
                                            i.naturalHeight > 0)).map(i => i.getAttribute('src')),
        figureSizes: imgs.map(i => [i.naturalWidth, i.naturalHeight]),
        tracebacks: tracebacks.length, links: links, ready: document.readyState,
        pasted: pasted.length, quoted: quoted, machinery: machinery, markup: markup};
"""

MATH_STATE = r"""
const art = document.querySelector('article') || document.querySelector('main') || document.body;
const math = Array.from(art.querySelectorAll('.math'));
const script = document.querySelector('script[src*="mathjax" i], script[src*="tex-"]');
return {formulas: math.length, src: script ? script.src : null,
        untypeset: math.filter(m => !m.querySelector('mjx-container, .MathJax')).length,
        errors: art.querySelectorAll('mjx-merror, .MathJax_Error, merror').length};
"""

SEARCH_STATE = r"""
const summary = document.querySelector('#search-results .search-summary, .search-summary');
const done = summary &&  // the summary in English or in the Chinese edition
    /found|did not match|no documents|搜索完成|没有匹配/i.test(summary.innerText);
if (!done) return null;
return {summary: summary.innerText,
        hits: Array.from(document.querySelectorAll('#search-results ul.search li a'))
                   .map(a => a.href)};
"""

SCROLL_TO_FIGURE = r"""
const img = document.querySelector('article .cell_output img, main .cell_output img');
if (img) { img.scrollIntoView({block: 'center'}); return true; }
return false;
"""


def fetch_status(url: str, cache: dict) -> tuple[int, str]:
    """Return (HTTP status, body text for HTML) of a same-origin URL, memoised."""
    if url not in cache:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                kind = answer.headers.get("Content-Type", "")
                body = answer.read().decode("utf-8", "replace") if "html" in kind else ""
                cache[url] = (answer.status, body)
        except urllib.error.HTTPError as error:
            cache[url] = (error.code, "")
        except OSError as error:
            cache[url] = (0, str(error))
    return cache[url]


def check_links(report: Report, base: str, links: dict[str, set[str]]) -> None:
    """Fetch every same-origin link once (HTTP 200) and check that #anchors exist."""
    cache: dict[str, tuple[int, str]] = {}
    targets: dict[str, set[str]] = {}
    for page, hrefs in links.items():
        for href in hrefs:
            if href.startswith(base):
                url, _, fragment = href.partition("#")
                targets.setdefault(url, set())
                if fragment:
                    targets[url].add((page, urllib.parse.unquote(fragment)))
    bad, anchors_bad = [], []
    for url, fragments in sorted(targets.items()):
        status, body = fetch_status(url, cache)
        if status != 200:
            bad.append(f"{url[len(base):]} ({status})")
            continue
        if body:
            ids = set(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", body))
            anchors_bad += [f"{page} → {url[len(base):]}#{frag}" for page, frag in fragments
                            if frag not in ids]
    report.check(not bad, "links", f"{len(targets)} same-origin URLs, HTTP 200"
                 + (f"; broken: {', '.join(bad[:10])}" if bad else ""))
    n = sum(len(f) for f in targets.values())
    report.check(not anchors_bad, "anchors", f"{n} #fragments resolve"
                 + (f"; missing: {', '.join(anchors_bad[:10])}" if anchors_bad else ""))


def check_page(report: Report, browser: Browser, base: str, doc: str, root: Path) -> dict | None:
    """Open one page and check load, figures and tracebacks; return its state."""
    url = base + doc + ".html"
    start = time.monotonic()
    status, _ = fetch_status(url, {})
    if not report.check(status == 200, f"load {doc}", f"HTTP {status}"):
        return None
    browser.get(url)
    state = browser.wait_for("return document.readyState === 'complete';", 10) and browser.js(
        PAGE_STATE)
    if not state:
        report.check(False, f"render {doc}", "page did not finish loading")
        return None
    report.check(state["text"] > 0 and bool(state["title"]), f"render {doc}",
                 f"title {state['title']!r}, {state['text']} characters, "
                 f"{time.monotonic() - start:.1f} s")
    source = next((s for s in (root / f"{doc}.ipynb", root / f"{doc}.md") if s.exists()), None)
    if source is not None:
        wanted = [f"_sources/{doc}{source.suffix}"]
        if source.suffix == ".ipynb":
            wanted += [f"colab.research.google.com/github/{{}}/{doc}.ipynb",
                       f"mybinder.org/v2/gh/{{}}?urlpath=tree/{doc}.ipynb"]
        patterns = [re.escape(w).replace(re.escape("{}"), ".+") for w in wanted]
        missing = [w for w, p in zip(wanted, patterns, strict=True)
                   if not any(re.search(p, link) for link in state["links"])]
        report.check(not missing, f"buttons {doc}", "download " + source.suffix
                     + (", Colab, Binder" if source.suffix == ".ipynb" else "")
                     + (f"; missing: {missing}" if missing else ""))
    want = expected_figures(root, doc)
    sizes = state["figureSizes"]
    ok = state["figures"] >= want and not state["brokenImages"]
    report.check(ok, f"figures {doc}",
                 f"{state['figures']} in outputs (notebook stores {want}), sizes {sizes[:4]}"
                 + (f"; not loaded: {state['brokenImages'][:5]}" if state["brokenImages"] else ""))
    report.check(state["tracebacks"] == 0, f"tracebacks {doc}",
                 f"{state['tracebacks']} of {state['outputs']} outputs show an error")
    if state["pasted"]:
        report.check(not state["quoted"], f"glue {doc}",
                     f"{state['pasted']} glued values in the prose"
                     + (f"; {len(state['quoted'])} show quotes, e.g. {state['quoted'][:3]} "
                        "(paste strings with {glue:text}`key`)" if state["quoted"] else ""))
    report.check(not state["machinery"], f"machinery {doc}",
                 "no NBVAL marker, assert or glue( in the code a reader sees"
                 + (f"; shows {state['machinery'][:3]}" if state["machinery"] else ""))
    report.check(not state["markup"], f"markup {doc}",
                 "no ** or {role}` left as text in the prose"
                 + (f"; shows {state['markup'][:3]}" if state["markup"] else ""))
    check_math(report, browser, base, doc)
    return state


def check_twin(report: Report, base: str, english_base: str, doc: str) -> None:
    """A translated page pastes as many glued numbers as its English twin, and links to it."""
    cache: dict = {}
    _, page = fetch_status(base + doc + ".html", cache)
    _, twin = fetch_status(english_base + doc + ".html", cache)
    count = [len(re.findall(r'class="[^"]*pasted-text', html)) for html in (page, twin)]
    linked = re.search(r'twin-edition.*?href="([^"]+)"', page, re.S)
    report.check(count[0] == count[1] and bool(linked), f"twin {doc}",
                 f"{count[0]} glued numbers (English: {count[1]}), link to the English page: "
                 f"{linked.group(1) if linked else 'missing'}")


def check_math(report: Report, browser: Browser, base: str, doc: str) -> None:
    """Check that MathJax, served with the book, typeset every formula without TeX errors."""
    math = browser.js(MATH_STATE)
    if not math["formulas"]:
        return
    served = (math["src"] or "").startswith(base)
    if not report.check(served, f"math {doc}",
                        f"MathJax served with the book ({math['src']})" if served else
                        f"MathJax comes from {math['src']}, not from the book: a reader offline "
                        "sees raw TeX (sphinx-mathjax-offline in _config.yml bundles it)"):
        return
    math = browser.wait_for("const s = (function(){" + MATH_STATE + "})();"
                            "return s.untypeset === 0 ? s : null;", 15) or browser.js(MATH_STATE)
    report.check(math["untypeset"] == 0 and math["errors"] == 0, f"math {doc}",
                 f"{math['formulas'] - math['untypeset']} of {math['formulas']} formulas typeset, "
                 f"{math['errors']} TeX errors")


def take_screenshot(browser: Browser, folder: Path, doc: str, figures: int) -> Path:
    """Save a screenshot of the open page, scrolled to its first figure if it has one."""
    if figures:
        browser.js(SCROLL_TO_FIGURE)
        time.sleep(0.3)
    shot = folder / f"{doc.replace('/', '_')}.png"
    browser.screenshot(shot)
    return shot


def check_search(report: Report, browser: Browser, base: str, doc: str, title: str) -> None:
    """Search for a word of the page's title and check that the page is among the hits."""
    term = search_term(title)
    if term is None:
        report.check(True, f"search {doc}", "title has no word to search for (skipped)")
        return
    browser.get(base + "search.html?q=" + urllib.parse.quote(term))
    state = browser.wait_for("return (function(){" + SEARCH_STATE + "})();", 15)
    hits = [h.split("#")[0].split("?")[0] for h in (state or {}).get("hits", [])]
    ok = bool(state) and (base + doc + ".html") in hits
    report.check(ok, f"search {doc}", f"q={term!r}: {len(hits)} hits"
                 + ("" if ok else f", page not among them ({(state or {}).get('summary')})"))


def main(argv: list[str] | None = None) -> int:
    """Run every check and return 0 when all pass."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="_build/html", type=Path)
    parser.add_argument("--toc", default="_toc.yml", type=Path)
    parser.add_argument("--root", default=None, type=Path,
                        help="the book's folder, where the toc's files are (default: the toc's)")
    parser.add_argument("--screenshots", default="_build/screenshots", type=Path)
    parser.add_argument("--budget", default=110.0, type=float, help="seconds before giving up")
    parser.add_argument("--edition", default="",
                        help="the edition's folder under --site (zh/ for the Chinese edition): its "
                        "pages are checked, and each against its English twin's glued numbers")
    args = parser.parse_args(argv)
    start = time.monotonic()
    report = Report()
    root = (args.root or args.toc.resolve().parent).resolve()
    if not (args.site / "index.html").exists():
        report.check(False, "site", f"{args.site}/index.html missing: build the book first "
                     "(make html)")
        return 1
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not Path(tool).exists():
            report.check(False, "browser", f"{tool} missing: run scripts/install_browser.sh")
            return 1
    if args.edition:  # the Chinese edition's glyphs need a CJK font (scripts/install_browser.sh)
        fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True,
                               text=True).stdout.split("\n")[0]
        report.check(bool(fonts), "fonts",
                     f"a Chinese font: {fonts or 'none (the glyphs show as boxes)'}")
    pages = toc_pages(args.toc)
    args.screenshots.mkdir(parents=True, exist_ok=True)
    server, site_base = serve(args.site)
    base = site_base + args.edition
    profile_dir = tempfile.mkdtemp(prefix="transfer-lab-chromium-")
    browser = None
    try:
        browser = Browser(profile_dir)
        report.check(True, "browser", f"{browser.js('return navigator.userAgent;')[:80]}")
        states, shots = {}, []
        for doc in pages:
            if time.monotonic() - start > args.budget:
                report.check(False, "budget", f"over {args.budget:.0f} s before {doc}")
                break
            state = check_page(report, browser, base, doc, root)
            if state is None:
                continue
            states[doc] = state
            if args.edition:
                check_twin(report, base, site_base, doc)
            if doc == pages[0] or (len(shots) < 2 and state["figures"]):
                shots.append(take_screenshot(browser, args.screenshots, doc, state["figures"]))
        if len(shots) < 2 and len(states) > 1:  # no page with a figure: the second page
            doc = next(d for d in states if d != pages[0])
            browser.get(base + doc + ".html")
            shots.append(take_screenshot(browser, args.screenshots, doc, 0))
        for doc, state in states.items():
            if time.monotonic() - start > args.budget:
                report.check(False, "budget", f"over {args.budget:.0f} s before search {doc}")
                break
            check_search(report, browser, base, doc, state["title"])
        check_links(report, base, {doc: set(s["links"]) for doc, s in states.items()})
        report.check(len(shots) == 2 and all(s.stat().st_size > 10_000 for s in shots),
                     "screenshots", ", ".join(str(s) for s in shots))
    except (RuntimeError, OSError, KeyError, TypeError) as error:
        report.check(False, "browser", f"{type(error).__name__}: {error}")
    finally:
        if browser is not None:
            browser.close()
        server.shutdown()
        shutil.rmtree(profile_dir, ignore_errors=True)
    seconds = time.monotonic() - start
    report.check(seconds < args.budget + 10, "time", f"{seconds:.1f} s for {len(pages)} pages")
    print(f"browser: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
