"""The labelling page's HTTP server: aiohttp, bound to 127.0.0.1, a random token in every request.

Why aiohttp: it is already installed with Ray (Ray's dashboard and serve run on it), it is a small,
maintained asyncio HTTP library (no hand-written request parsing here), and one event loop in one
thread makes every answer strictly sequential: an answer is written and fsynced inside its request
handler before the response that carries the next crop is sent.

Every request must name this machine in its Host header (localhost, 127.0.0.1 or [::1], with this
server's port), else 421: a web page on another site whose name an attacker re-points at 127.0.0.1
(DNS rebinding) sends its own name there, and is refused even before the token is looked at (the
Jupyter and Ray dashboard servers refuse the same way). Bodies are at most MAX_BODY bytes (else 413).

Routes (each needs `?token=...` or the `X-Cropray-Token` header, else 403):
    GET  /                      the page (static/index.html)
    GET  /api/state             the current crop and progress (JSON)
    POST /api/answer            {"crop_id", "answer": "signal" | "not_signal" | "skip"} -> next state
    POST /api/undo              remove the last answer -> state (that crop again)
    GET  /api/crop/{pos}.png    a queue row as an image (?cmap=&scale=&lo=&hi=&zoom=)
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import secrets
import signal
import socket
from importlib import resources

from cropray.errors import CroprayError

ANSWERS = {"signal": 1, "not_signal": 0, "skip": None}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
MAX_BODY = 64 * 1024  # an answer is ~100 bytes of JSON


def loopback_host(host: str | None, port: int | None) -> bool:
    """Does a Host header name this machine's loopback (and, when `port` is given, this port)?"""
    if not host:
        return False
    name, got = host.strip().lower(), ""
    if name.startswith("["):  # an IPv6 literal: "[::1]" or "[::1]:PORT"
        name, _, rest = name.partition("]")
        name += "]"
        if rest and not rest.startswith(":"):
            return False
        got = rest[1:]
    elif ":" in name:
        name, got = name.rsplit(":", 1)
    if name not in LOOPBACK_NAMES:
        return False
    return not got or port is None or got == str(port)


def bind_loopback(port: int, say) -> socket.socket:
    """A listening socket on 127.0.0.1:port, or on a free port (said) when that one is taken."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            s.close()
            raise CroprayError(f"cannot listen on 127.0.0.1:{port}: {e.strerror}") from None
        s.bind(("127.0.0.1", 0))
        say(f"cropray label: port {port} is in use; using port {s.getsockname()[1]} instead")
    s.listen(64)
    s.setblocking(False)
    return s


class Session:
    """Queue + store + position: the state every handler reads and changes (one event loop thread)."""

    def __init__(self, queue, store):
        self.queue, self.store = queue, store

    def position(self) -> int | None:
        done = self.store.done_ids()
        return next((i for i, c in enumerate(self.queue.ids) if c not in done), None)

    def state(self) -> dict:
        pos = self.position()
        done = self.store.done_ids()
        labels = {a.crop_id: a.label for a in self.store.actions}
        last = self.store.actions[-1] if self.store.actions else None
        item = None
        if pos is not None:
            item = self.queue.row_info(pos)
            item["neighbours"] = [dict(self.queue.row_info(j), answer=_word(labels.get(self.queue.ids[j], "-")))
                                  for j in self.queue.neighbours(pos)]
        return {"done": pos is None, "total": len(self.queue), "answered": sum(c in done for c in self.queue.ids),
                **self.store.counts(), "item": item, "labels": str(self.store.dir),
                "last": None if last is None else {"crop_id": last.crop_id, "answer": _word(last.label)}}

    def answer(self, crop_id: str, word: str) -> tuple[int, dict]:
        pos = self.position()
        if word not in ANSWERS:
            return 400, {"error": f"answer must be one of {', '.join(ANSWERS)}"}
        if pos is None or self.queue.ids[pos] != crop_id:
            return 409, {"error": "not the crop being shown (answered already?)", **self.state()}
        if ANSWERS[word] is None:
            self.store.skip(crop_id)
        else:
            self.store.answer(crop_id, ANSWERS[word], self._row(pos))
        return 200, self.state()

    def _row(self, pos: int):
        import pyarrow as pa

        q = self.queue
        cols = {"crop_id": q.table.column("crop_id").slice(pos, 1), "crop": q.arrow_crop(pos)}
        for c in ("score", "reason", "source_file", "model_id"):
            if c in q.table.column_names:
                cols[c] = q.table.column(c).slice(pos, 1)
        return pa.table(cols)


def _word(label) -> str:
    return {1: "signal", 0: "not_signal", None: "skip"}.get(label, str(label))


def make_app(session: Session, token: str, on_done=None, port: int | None = None):
    """The aiohttp application; `port`: the one the Host header must name (None: any)."""
    from aiohttp import web

    from cropray.label.render import render_png

    page = resources.files("cropray.label").joinpath("static/index.html").read_text()

    @web.middleware
    async def require_token(request, handler):
        if not loopback_host(request.headers.get("Host"), port):
            return web.Response(status=421, text="421: this server answers only to localhost, 127.0.0.1 or [::1] "
                                                 "(use the URL cropray label printed)")
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text=f"413: request body larger than {MAX_BODY} bytes")
        got = request.query.get("token") or request.headers.get("X-Cropray-Token") or ""
        if not hmac.compare_digest(got.encode(), token.encode()):
            return web.Response(status=403, text="403: missing or wrong token (use the URL cropray label printed)")
        resp = await handler(request)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def index(_request):
        return web.Response(text=page, content_type="text/html")

    async def state(_request):
        return web.json_response(session.state())

    async def answer(request):
        try:
            body = await request.json()
            crop_id, word = str(body["crop_id"]), str(body["answer"])
        except web.HTTPRequestEntityTooLarge:  # a chunked body over MAX_BODY (no Content-Length to check)
            return web.Response(status=413, text=f"413: request body larger than {MAX_BODY} bytes")
        except Exception:
            return web.json_response({"error": "body must be JSON {crop_id, answer}"}, status=400)
        status, out = session.answer(crop_id, word)  # durable (fsynced) before this returns
        if out.get("done") and on_done:
            on_done()
        return web.json_response(out, status=status)

    async def undo(_request):
        session.store.undo()
        return web.json_response(session.state())

    async def crop_png(request):
        try:
            pos = int(request.match_info["pos"])
            q = request.query
            png = render_png(session.queue.crop(pos), cmap=q.get("cmap", "viridis"), scale=q.get("scale", "linear"),
                             lo=float(q.get("lo", 1)), hi=float(q.get("hi", 99.5)), zoom=int(q.get("zoom", 6)))
        except (ValueError, IndexError, CroprayError) as e:
            return web.Response(status=400, text=f"bad image request: {e}")
        return web.Response(body=png, content_type="image/png")

    app = web.Application(middlewares=[require_token], client_max_size=MAX_BODY)
    app.add_routes([web.get("/", index), web.get("/api/state", state), web.post("/api/answer", answer),
                    web.post("/api/undo", undo), web.get(r"/api/crop/{pos:\d+}.png", crop_png)])
    return app


def serve(queue_path, labels_dir, *, port: int = 8765, exit_when_done: bool = False, say=print,
          url_out=None) -> dict:
    """Serve until Ctrl-C / SIGTERM (or, with exit_when_done, the last answer). Returns a summary."""
    from cropray.label.queue import Queue
    from cropray.label.store import LabelStore
    from cropray.outlock import output_lock

    queue = Queue(queue_path)
    with output_lock(labels_dir):  # a second `cropray label` on LABELS: OutputBusy, exit 2
        store = LabelStore(labels_dir)
        session = Session(queue, store)
        sock = bind_loopback(port, say)
        token = secrets.token_urlsafe(24)
        asyncio.run(_run(session, sock, token, exit_when_done, say, url_out))
        st = session.state()
    return {"queue": str(queue_path), "labels": str(labels_dir), "queue_rows": st["total"],
            "answered": st["answered"], "labelled": st["labelled"], "skipped": st["skipped"],
            "signal": st["signal"], "done": st["done"]}


async def _run(session: Session, sock, token: str, exit_when_done: bool, say, url_out) -> None:
    from aiohttp import web

    stop = asyncio.Event()
    app = make_app(session, token, on_done=stop.set if exit_when_done else None, port=sock.getsockname()[1])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    port = sock.getsockname()[1]
    st = session.state()
    say(f"cropray label: {st['answered']} of {st['total']} crops answered so far; LABELS {session.store.dir}")
    url = f"http://127.0.0.1:{port}/?token={token}"
    print(f"cropray label: open {url}", file=url_out, flush=True)
    say(f"cropray label: over SSH: ssh -L {port}:127.0.0.1:{port} THIS_HOST, then open the URL locally; Ctrl-C stops")
    if exit_when_done and st["done"]:
        stop.set()
    await stop.wait()
    await runner.cleanup()
