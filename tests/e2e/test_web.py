"""The web UI's files as the server gives them (SPEC section 9): built into
the binary from web/, served at / and /ui/NAME by the real `baram api`, with
the right content types, an ETag that turns a repeat fetch into a 304, the
pages' security headers, and no way out of the embedded set."""

import re

import pytest

from api_util import ApiServer, alive_cleanup, check_problem, make_home
from conftest import ROOT

WEB = ROOT / "web"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
         ".ico": "image/x-icon", ".json": "application/json"}


def web_files():
    return sorted(p for p in WEB.iterdir()
                  if p.is_file() and p.suffix != ".md" and not p.name.startswith("."))


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    b = make_home(root)
    s = ApiServer(b, root / "api.log").start()
    yield s
    alive_cleanup([s])


def test_every_file_of_web_is_served_as_built(srv):
    files = web_files()
    assert any(p.name == "index.html" for p in files), files
    for p in files:
        r = srv.get("/ui/" + p.name)
        assert r.status == 200, (p.name, r)
        assert r.body == p.read_bytes(), p.name
        assert r.header("content-type") == TYPES[p.suffix], (p.name, r.headers)
        assert r.header("cache-control") == "no-cache", r.headers
        assert r.header("x-content-type-options") == "nosniff"


def test_root_is_the_index_page_with_security_headers(srv):
    r = srv.get("/")
    assert r.status == 200, r
    assert r.body == (WEB / "index.html").read_bytes()
    assert r.header("content-type") == "text/html; charset=utf-8"
    csp = r.header("content-security-policy")
    assert "default-src 'self'" in csp and "script-src 'self'" in csp, csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, csp
    assert r.header("x-frame-options") == "DENY"
    assert r.header("referrer-policy") == "no-referrer"


def test_etag_revalidation_gives_304_without_a_body(srv):
    for path in ("/", "/ui/index.html"):
        first = srv.get(path)
        tag = first.header("etag")
        assert tag and tag.startswith('"') and tag.endswith('"'), first.headers
        again = srv.get(path, headers={"If-None-Match": tag})
        assert again.status == 304 and again.body == b"", again
        assert again.header("etag") == tag
        other = srv.get(path, headers={"If-None-Match": '"not-this-one"'})
        assert other.status == 200 and other.body == first.body
    # Each file has its own tag.
    tags = {srv.get("/ui/" + p.name).header("etag") for p in web_files()}
    assert len(tags) == len(web_files())


def test_no_token_is_needed_for_the_ui_but_still_for_the_api(srv):
    assert srv.get("/").status == 200
    check_problem(srv.get("/api/v1/dags"), 401)


@pytest.mark.parametrize("path,status", [
    ("/ui/nope.js", 404),
    ("/ui/", 404),
    ("/ui", 404),
    ("/index.html", 404),
    ("/ui/README.md", 404),            # developer notes are not served
    ("/ui/..%2Fsecret.key", 400),
    ("/ui/..", 400),
    ("/ui/%2e%2e", 400),
    ("/ui/a%00b", 400),
    ("/ui/%ff", 400),
    ("/ui/../api/v1/health", 404),     # no normalisation: not a route
    ("/ui/x/y", 404),
])
def test_anything_else_under_ui_is_refused(srv, path, status):
    check_problem(srv.get(path), status)


def test_other_methods_are_405(srv):
    for path in ("/", "/ui/index.html"):
        r = srv.request("POST", path, body=b"x")
        check_problem(r, 405)
        assert r.header("allow") == "GET, HEAD"
    r = srv.request("HEAD", "/ui/index.html")
    assert r.status == 200 and r.body == b"" and r.header("content-type").startswith("text/html")


def test_baram_web_dir_serves_from_disk_for_ui_work(tmp_path):
    b = make_home(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>edited</p>")
    (site / "app.js").write_text("export const x = 1;\n")
    b.env["BARAM_WEB_DIR"] = str(site)
    s = ApiServer(b, tmp_path / "api.log").start()
    try:
        r = s.get("/")
        assert r.status == 200 and r.body == b"<p>edited</p>", r
        assert r.header("cache-control") == "no-store" and r.header("etag") is None
        (site / "index.html").write_text("<p>again</p>")
        assert s.get("/").body == b"<p>again</p>"
        assert s.get("/ui/app.js").header("content-type") == "text/javascript; charset=utf-8"
        check_problem(s.get("/ui/gone.css"), 404)
    finally:
        alive_cleanup([s])


def test_web_readme_cites_only_files_that_exist():
    """web/README.md names files of the repository (a path with a '/', from its root) and of
    web/ (its table): each is there, so a reader following one does not hit a dead end."""
    text = (WEB / "README.md").read_text()
    cited = re.findall(r"`([A-Za-z0-9_.\-/*]+\.[a-z]+|[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-/]*)`", text)
    assert cited, text
    for name in cited:
        if "*" in name or name.startswith("/"):
            continue  # a pattern (page_*.js, *.md) or a URL path (/ui/NAME)
        path = ROOT / name if "/" in name else WEB / name
        assert path.exists(), "web/README.md cites %s, which is not in the repository" % name
