"""The ``hmr review`` HTTP server: standard library only, bound to 127.0.0.1.

Routes (all GET unless said otherwise; JSON answers ``application/json``)::

    /                         the page (hmr.review.page)
    /app.js                   its script
    /api/stores               the stores: path, dataset, split, sample count, eval metric
    /api/samples?...          one page of the filtered, sorted list (ReviewIndex.query's params,
                              plus offset, limit <= 500): {"total", "items": [...]}
    /api/sample/S/ROW         every field of one sample, its provenance and what was drawn
    /thumb/S/ROW.jpg          thumbnail cropped by the person box
    /view/S/ROW.png           the sample view (keypoints, skeleton, box, projected mesh)
    /files/S/PATH             a file under store S's image root (nothing outside it: 404)
    /api/rarity               pose rarity's background job per store: {"stores": [{"store",
                              "state", "done", "total", "error", "cache"}]}; a samples query
                              that needs rarity before it is done starts the job and is
                              answered 202 {"pending": "rarity_mm", "rarity": [...]}
    /api/marks?store=S        the marks of store S on its current rows: {"version", "file",
                              "marks": {row: mark}, "missing": [marks whose sample is not in the store]}
    POST /api/marks           {"store", "version", "set": {row: reason}, "clear": [rows],
                              "forget": [identities of missing marks]}
                              -> the new marks, 409 when version is not current
    POST /api/marks/selection {"versions": {S: v}, "params": {...}, "reason" | "unmark": true,
                              "dry_run"?: true} marks (or unmarks) every sample the filters
                              select, on every page; dry_run only counts them (the page's
                              confirmation): {"count", "per_store": {S: n}, "changed"}

Nothing is executed from data files: stores are read through :mod:`hmr.core.schema`, marks
are JSON, images are decoded by OpenCV.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.errors import HmrError
from hmr.core.schema.fields import FIELD_NAMES
from hmr.core.schema.marks import marks_path
from hmr.review import draw
from hmr.review.index import RarityPending, ReviewIndex
from hmr.review.marks import MarksConflict, marks_view, resolve_marks, update_marks
from hmr.review.page import APP_JS, PAGE_HTML

MAX_LIMIT = 500
MAX_SELECTION = 100_000  # marks one request may add


class NotFound(Exception):
    pass


class ReviewApp:
    """The state behind the server: the index and the marks (read on every request, so a
    second tab, process or ``hmr review`` sees each write)."""

    def __init__(self, index: ReviewIndex, body_model: str | None = None, smplx_model: str | None = None):
        self.index = index
        self.body_model = body_model  # SMPL folder of the sample view's mesh
        self.smplx_model = smplx_model  # SMPL-X folder, for samples with SMPL-X only
        self._marks: dict[int, tuple[tuple, Any]] = {}  # store -> (marks file's stat, its ResolvedMarks)
        self._marks_lock = threading.Lock()

    def marks(self, k: int):
        """Store ``k``'s marks on its current rows (:class:`hmr.core.schema.marks.ResolvedMarks`),
        resolved again whenever the file changed (another tab, process or ``hmr review``)."""
        e = self.index.entries[k]
        path = marks_path(e.path)
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = ()
        with self._marks_lock:
            cached = self._marks.get(k)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        resolved = resolve_marks(e.path, e.store)
        with self._marks_lock:
            self._marks[k] = (stamp, resolved)
        return resolved

    def marked_rows(self) -> list[set[int]]:
        return [set(self.marks(k).rows) for k in range(len(self.index.entries))]

    def entry(self, k: str | int):
        try:
            k = int(k)
            return k, self.index.entries[k]
        except (ValueError, IndexError):
            raise NotFound from None

    def sample(self, k: str, row: str) -> tuple[Any, dict]:
        k, e = self.entry(k)
        try:
            row = int(row)
        except ValueError:
            raise NotFound from None
        if not 0 <= row < len(e.store):
            raise NotFound
        return e, e.store[row]

    # -- JSON API ---------------------------------------------------------------------
    def stores(self) -> dict[str, Any]:
        return {"stores": [{"store": k, "path": str(e.path), "dataset": e.store.dataset, "split": e.store.split,
                            "num_samples": len(e.store), "keypoint_convention": e.store.attrs["keypoint_convention"],
                            "eval_metric": e.eval_metric, "has_fit_error": "extra_fit_error" in e.store.fields}
                           for k, e in enumerate(self.index.entries)]}

    def samples(self, params: dict[str, str]) -> dict[str, Any]:
        try:
            offset = max(int(params.get("offset", 0)), 0)
            limit = min(max(int(params.get("limit", 50)), 1), MAX_LIMIT)
        except ValueError:
            raise HmrError("offset and limit must be integers") from None
        needs_marks = params.get("marked", "") in ("0", "1")
        marked = self.marked_rows() if needs_marks else [set()] * len(self.index.entries)
        if not any(params.get(p) for p in _FILTERING) and not params.get("sort"):
            # the common first page: no column is read at all
            total = self.index.total()
            picked = _first_rows(self.index, offset, limit)
        else:
            s, r = self.index.query(params, marked)
            total = len(r)
            picked = list(zip(s[offset:offset + limit].tolist(), r[offset:offset + limit].tolist()))
        items = []
        for k in sorted({k for k, _ in picked}):
            marks = {str(r): m for r, m in self.marks(k).rows.items()}
            cards = self.index.describe(k, [row for kk, row in picked if kk == k], marks)
            items += cards
        order = {key: i for i, key in enumerate(picked)}
        items.sort(key=lambda it: order[(it["store"], it["row"])])
        return {"total": total, "offset": offset, "limit": limit, "items": items}

    def sample_fields(self, k: str, row: str) -> dict[str, Any]:
        e, s = self.sample(k, row)
        fields = {name: _jsonable(s[name]) for name in FIELD_NAMES if name in s}
        extras = {name: _jsonable(v) for name, v in s.items() if name not in fields}
        a = e.store.attrs
        marks = self.marks(int(k))
        mark = marks.rows.get(int(row))
        return {"store": int(k), "row": int(row), "fields": fields, "extra": extras,
                "provenance": {"store": str(e.path), "dataset": a.get("dataset"), "split": a.get("split"),
                               "converter": a.get("converter"), "converter_version": a.get("converter_version"),
                               "source_key": str(s["source_key"]), "image_root": a.get("image_root"),
                               "keypoint_convention": a.get("keypoint_convention")},
                "eval_error": e.eval_errors.get(int(row)), "eval_metric": e.eval_metric,
                "mark": mark, "version": marks.version, "mesh": draw.mesh_status(s), "mesh_model": draw.mesh_model(s)}

    def marks_json(self, k: int) -> dict[str, Any]:
        return {"store": k, **marks_view(self.marks(k))}

    def post_marks(self, body: dict[str, Any]) -> dict[str, Any]:
        k, e = self.entry(body.get("store", -1))
        set_marks = {int(r): str(reason) for r, reason in (body.get("set") or {}).items()}
        resolved = update_marks(e.path, set_marks=set_marks, clear=[int(r) for r in body.get("clear") or []],
                                forget=[str(i) for i in body.get("forget") or []],
                                expected_version=body.get("version"), store=e.store)
        return {"store": k, **marks_view(resolved)}

    def post_selection(self, body: dict[str, Any]) -> dict[str, Any]:
        """Marks (``reason``) or unmarks (``unmark``) every sample the filters ``params``
        select, whatever page the browser shows; ``dry_run``: only the counts, for the page's
        confirmation. ``changed``: how many of them the action would change."""
        params = {str(a): str(b) for a, b in (body.get("params") or {}).items()}
        unmark = bool(body.get("unmark"))
        reason = str(body.get("reason", "")).strip()
        if not unmark and not reason:
            raise HmrError("give a reason for the marks")
        marked = self.marked_rows()
        s, r = self.index.query(params, marked)
        per_store = {str(k): int((s == k).sum()) for k in np.unique(s).tolist()}
        changed = sum(int(np.isin(r[s == k], list(marked[k])).sum()) for k in np.unique(s).tolist())
        if not unmark:
            changed = int(len(r))  # every selected sample gets this reason (re-marked ones too)
        if body.get("dry_run"):
            return {"count": int(len(r)), "per_store": per_store, "changed": changed, "unmark": unmark}
        if len(r) > MAX_SELECTION:
            raise HmrError(f"the selection has {len(r)} samples; narrow it to {MAX_SELECTION} or fewer")
        versions = body.get("versions") or {}
        out = {}
        for k in np.unique(s).tolist():
            e = self.index.entries[k]
            rows = r[s == k].tolist()
            change = {"clear": rows} if unmark else {"set_marks": {row: reason for row in rows}}
            out[str(k)] = update_marks(e.path, **change, expected_version=versions.get(str(k)),
                                       store=e.store).version
        return {"count": int(len(r)), "marked": 0 if unmark else int(len(r)), "unmarked": changed if unmark else 0,
                "versions": out}

    # -- files ------------------------------------------------------------------------
    def image_file(self, k: str, rel: str) -> Path:
        """A file under store ``k``'s image root; anything else (``..``, absolute paths,
        symlinks leading out) is NotFound."""
        _, e = self.entry(k)
        root = e.image_root.resolve()
        target = (root / urllib.parse.unquote(rel)).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise NotFound
        return target


_FILTERING = ("store", "dataset", "split", "smpl_source", "has_smpl", "has3d", "marked",
              *(f"{b}{c}" for b in ("min_", "max_") for c in ("row", "joints2d", "joints3d", "fit_error",
                                                              "rarity_mm", "eval_error")))


def _first_rows(index: ReviewIndex, offset: int, limit: int) -> list[tuple[int, int]]:
    out = []
    for k, e in enumerate(index.entries):
        n = len(e.store)
        if offset >= n:
            offset -= n
            continue
        take = min(n - offset, limit - len(out))
        out += [(k, r) for r in range(offset, offset + take)]
        offset = 0
        if len(out) >= limit:
            break
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return np.where(np.isfinite(v), v, None).tolist() if v.dtype.kind == "f" else v.tolist()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def make_handler(app: ReviewApp):
    class Handler(BaseHTTPRequestHandler):
        server_version = "hmr-review"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet unless asked
            if os.environ.get("HMR_REVIEW_LOG"):
                super().log_message(fmt, *args)

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj: Any, status: int = 200) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def _route(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            parts = [p for p in url.path.split("/") if p]
            params = dict(urllib.parse.parse_qsl(url.query))
            try:
                if method == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    if length > 1 << 20:
                        raise HmrError("request too large")
                    try:
                        body = json.loads(self.rfile.read(length) or b"{}")
                    except ValueError:
                        raise HmrError("the request body is not JSON") from None
                    if not isinstance(body, dict):
                        raise HmrError("the request body is not a JSON object")
                    if parts == ["api", "marks"]:
                        return self._json(app.post_marks(body))
                    if parts == ["api", "marks", "selection"]:
                        return self._json(app.post_selection(body))
                    raise NotFound
                if not parts:
                    return self._send(200, PAGE_HTML.encode(), "text/html; charset=utf-8")
                if parts == ["app.js"]:
                    return self._send(200, APP_JS.encode(), "text/javascript; charset=utf-8")
                if parts == ["api", "stores"]:
                    return self._json(app.stores())
                if parts == ["api", "samples"]:
                    return self._json(app.samples(params))
                if parts == ["api", "rarity"]:
                    return self._json({"stores": [e.rarity_progress(k) for k, e in enumerate(app.index.entries)]})
                if parts == ["api", "marks"]:
                    return self._json(app.marks_json(app.entry(params.get("store", ""))[0]))
                if len(parts) == 4 and parts[:2] == ["api", "sample"]:
                    return self._json(app.sample_fields(parts[2], parts[3]))
                if len(parts) == 3 and parts[0] == "thumb" and parts[2].endswith(".jpg"):
                    e, s = app.sample(parts[1], parts[2][:-4])
                    return self._send(200, draw.encode(draw.thumbnail(e.store, s), ".jpg"), "image/jpeg")
                if len(parts) == 3 and parts[0] == "view" and parts[2].endswith(".png"):
                    e, s = app.sample(parts[1], parts[2][:-4])
                    img, _ = draw.sample_view(e.store, s, mesh=params.get("mesh", "1") != "0",
                                              body_model=app.body_model, smplx_model=app.smplx_model)
                    return self._send(200, draw.encode(img, ".png"), "image/png")
                if len(parts) >= 3 and parts[0] == "files":
                    rel = url.path.split("/", 3)[3]
                    path = app.image_file(parts[1], rel)
                    return self._send(200, path.read_bytes(), "application/octet-stream")
                raise NotFound
            except NotFound:
                self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
            except RarityPending as exc:
                self._json({"error": str(exc), "pending": "rarity_mm", "rarity": exc.progress}, HTTPStatus.ACCEPTED)
            except MarksConflict as exc:
                self._json({"error": str(exc)}, HTTPStatus.CONFLICT)
            except (HmrError, ValueError, TypeError) as exc:
                self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

    return Handler


def make_server(index: ReviewIndex, port: int = 8000, host: str = "127.0.0.1",
                body_model: str | None = None, smplx_model: str | None = None) -> ThreadingHTTPServer:
    """A server on ``host:port`` (port 0: a free one, see ``server.server_address``)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise HmrError(f"hmr review binds to the loopback only, not {host!r}")
    server = ThreadingHTTPServer((host, port), make_handler(ReviewApp(index, body_model, smplx_model)))
    server.daemon_threads = True
    return server


def serve_in_thread(index: ReviewIndex, port: int = 0) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start a server in a daemon thread (tests, benchmarks); stop it with ``server.shutdown()``."""
    server = make_server(index, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
