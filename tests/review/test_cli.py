"""``hmr review`` from the command line: --list-marks, and the server it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

from cli.main import main
from hmr.core.schema import open_store
from hmr.review.marks import update_marks
from tests.review.conftest import get, make_store


def test_list_marks(tmp_path, capsys):
    path = make_store(tmp_path, n=5, name="lm")
    assert main(["review", str(path), "--list-marks"]) == 0
    assert "version 0, 0 marked" in capsys.readouterr().out
    update_marks(path, set_marks={2: "flipped left/right"}, store=open_store(path))
    assert main(["review", str(path), "--list-marks"]) == 0
    out = capsys.readouterr().out
    assert "version 1, 1 marked" in out and "ann:1002" in out and "flipped left/right" in out


def test_command_serves_on_the_loopback(tmp_path):
    path = make_store(tmp_path, n=5, name="cmd")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "review", str(path), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        line = proc.stdout.readline()
        assert line.startswith("hmr review: http://127.0.0.1:"), line
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/stores", timeout=60) as r:
            stores = json.loads(r.read())["stores"]
        assert stores[0]["num_samples"] == 5 and stores[0]["dataset"] == "cmd"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_symlink_out_of_the_image_root_is_404(tmp_path):
    from hmr.review.index import ReviewIndex
    from hmr.review.server import serve_in_thread

    path = make_store(tmp_path, n=2, name="ln")
    secret = tmp_path / "secret.txt"
    secret.write_text("not an image")
    (tmp_path / "ln-images" / "sub" / "link.jpg").symlink_to(secret)
    srv, _ = serve_in_thread(ReviewIndex([path]), 0)
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        assert get(f"{base}/files/0/sub/link.jpg")[0] == 404
        assert get(f"{base}/files/0/sub/img_000.jpg")[0] == 200
    finally:
        srv.shutdown()
        srv.server_close()


START_PATH = r"""
import sys, urllib.request
from cli.main import main  # noqa: F401  (the command line's own imports)
import cli.commands.review  # noqa: F401
from hmr.review.index import ReviewIndex
from hmr.review.server import serve_in_thread
server, _ = serve_in_thread(ReviewIndex([sys.argv[1]]))
url = "http://127.0.0.1:%d" % server.server_address[1]
for path in ("/", "/app.js", "/api/stores", "/api/samples?offset=0&limit=50", "/api/marks?store=0",
             "/thumb/0/0.jpg", "/api/sample/0/0"):
    urllib.request.urlopen(url + path, timeout=60).read()
print("torch" in sys.modules)
urllib.request.urlopen(url + "/view/0/0.png", timeout=120).read()  # a mesh is drawn: torch now
print("torch" in sys.modules)
server.shutdown()
"""


def test_start_path_imports_no_torch(tmp_path):
    """From the command to the first page (grid, thumbnails, marks, a sample's fields) no torch
    is imported: it costs ~1.7 s of the 2 s budget. The first mesh drawn may import it."""
    path = make_store(tmp_path, n=3, name="fast")
    out = subprocess.run([sys.executable, "-c", START_PATH, str(path)], capture_output=True, text=True,
                         cwd=os.getcwd(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"], out.stdout
