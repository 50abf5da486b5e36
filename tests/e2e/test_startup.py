"""Start-up cost: libcurl, libmicrohttpd and libjwt are opened on first use.

The binary names none of them as a dependency (src/base/dynlib.h): a command
that sends no request, serves no API and checks no token never loads them or
the ~30 libraries they pull in. Each test reads a live baram process's
/proc/PID/maps: a task's parent is the baram that started it.
"""

import http.server
import os
import subprocess
import threading

import pytest

from api_util import ApiServer, make_home, token
from conftest import BIN, states

LAZY = ("libcurl", "libmicrohttpd", "libjwt")


def loaded(maps_text):
    return {lib for lib in LAZY if lib + "." in maps_text or lib + "-" in maps_text}


def test_the_binary_links_none_of_them():
    out = subprocess.run(["readelf", "-d", BIN], capture_output=True, text=True, check=True).stdout
    needed = [ln for ln in out.splitlines() if "(NEEDED)" in ln]
    assert needed, out
    assert not [ln for ln in needed if any(lib in ln for lib in LAZY)], needed


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


@pytest.fixture
def ok_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_a_run_loads_libcurl_only_for_an_http_task(baram, ok_server):
    # Each task copies its parent's (baram run's) memory map into a file of its own.
    p = baram.write("shell.yaml", """
        dag: shell
        tasks:
          look: {run: cat /proc/$PPID/maps > before.maps}
        """)
    assert baram.run(p).rc == 0
    assert loaded((baram.dags / "before.maps").read_text()) == set()

    p = baram.write("web.yaml", """
        dag: web
        tasks:
          get: {http: {url: "http://127.0.0.1:%d/"}}
          look: {needs: [get], run: cat /proc/$PPID/maps > after.maps}
        """ % ok_server)
    r = baram.run(p, "--json")
    assert r.rc == 0, r
    assert loaded((baram.dags / "after.maps").read_text()) == {"libcurl"}


def test_a_missing_libcurl_fails_the_http_try_with_its_name(baram, ok_server, tmp_path):
    # A folder searched first that holds a libcurl.so.4 which is no library at all.
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / "libcurl.so.4").write_bytes(b"not an ELF file\n")
    p = baram.write("web.yaml", """
        dag: web
        tasks:
          get: {http: {url: "http://127.0.0.1:%d/"}}
          shell: {run: "true"}
        """ % ok_server)
    r = baram.run(p, "--json", env={"LD_LIBRARY_PATH": str(libs)})
    assert r.rc == 1, r
    obj = r.json
    assert states(obj) == {"get": "failed", "shell": "success"}, obj
    assert 'msg="shared library missing" library=libcurl.so.4' in r.err, r
    log = baram.try_log(obj, "get").read_text()
    assert "cannot start the http client" in log, log


def test_the_api_loads_libjwt_at_its_first_token(tmp_path):
    b = make_home(tmp_path)
    api = ApiServer(b, tmp_path / "api.log").start()
    try:
        maps = "/proc/%d/maps" % api.proc.pid
        with open(maps) as f:
            assert loaded(f.read()) == {"libmicrohttpd"}
        r = api.request("GET", "/api/v1/dags", token=token(b))
        assert r.status == 200, r
        with open(maps) as f:
            assert loaded(f.read()) == {"libmicrohttpd", "libjwt"}
    finally:
        assert api.stop() == 0
