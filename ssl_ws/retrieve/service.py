"""``ssl-ws serve``: retrieval over HTTP (FastAPI + uvicorn), a JSON API and a web page.

One :class:`~ssl_ws.retrieve.searcher.Searcher`, loaded at start-up (index read-only, store
checked against the index's digest), answers as ``ssl-ws query`` does. Endpoints (OpenAPI at ``/docs``):

* ``GET /health`` -- ``{"status": "ok"}``; ``GET /info`` -- :meth:`~ssl_ws.retrieve.searcher.Searcher.info`;
* ``POST /query`` -- ``{"ids": [...], "params": [[...]], "images": ["<base64 PNG/JPEG>"], "k": 10,
  "filter_class": null, "exclude_views": false, "views": 1, "resize": false}``; any of ``ids``,
  ``params``, ``images`` (answers in that order) -> ``{"results": [{"query", "neighbours"}, ...]}``;
* ``GET /inr/{id}.png`` -- a stored INR rendered from its weights; ``GET /`` -- the web page
  (``static/index.html``).

A refused request is an HTTP 4xx with ``{"error": "..."}``: malformed body 422; bad value
(unknown id, wrong shape, NaN, undecodable or oversized image, ``k < 1``) 400; body over
``max_body`` bytes 413. Unexpected failures: 500 ``{"error": "internal error (<type>)"}``, the
traceback only in the server's log. Nothing a client sends is unpickled.
"""



import base64
import binascii
import logging
import os
from pathlib import Path
from typing import List, Optional, Union

from ..errors import SslWsError

log = logging.getLogger("ssl_ws.serve")

MAX_BODY = 16 << 20  # bytes of one request body
MAX_IDS = 4096  # stored INRs per request
MAX_PARAMS = 1024  # INRs given as parameters per request
MAX_IMAGES = 64  # images per request (fitted together)
MAX_K = 1000
MAX_IMAGE_PIXELS = 4096 * 4096  # per uploaded image, checked from its header before decoding
MAX_VIEWS = 8

#: environment variables through which ``ssl-ws serve --workers N`` hands its arguments to each worker
ENV = {"index": "SSL_WS_SERVE_INDEX", "store": "SSL_WS_SERVE_STORE", "ckpt": "SSL_WS_SERVE_CKPT",
       "device": "SSL_WS_SERVE_DEVICE"}


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 (by its Content-Length, or
    while it streams in when it has none)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await _json_response(send, 413, f"request body over the limit of {self.limit} bytes")
        seen = 0
        too_big = False

        async def limited():
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_big = True
                    raise _TooBig()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooBig:
            await _json_response(send, 413, f"request body over the limit of {self.limit} bytes")


class _TooBig(Exception):
    pass


async def _json_response(send, status: int, error: str):
    import json

    body = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(searcher, *, max_body: int = MAX_BODY):
    """The FastAPI app answering through ``searcher`` (module docstring)."""
    from typing import Annotated

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
    from starlette.exceptions import HTTPException

    from .. import __version__

    Finite = Annotated[float, Field(allow_inf_nan=False)]

    class QueryRequest(BaseModel):
        """One request: stored INRs (``ids``), INRs as parameters (``params``) and/or images to fit (``images``)."""

        model_config = ConfigDict(extra="forbid")
        ids: Optional[List[StrictInt]] = Field(None, max_length=MAX_IDS, description="stored INR ids (store rows)")
        params: Optional[List[List[Finite]]] = Field(None, max_length=MAX_PARAMS,
                                                     description="INRs as flat parameters in the store's layout")
        images: Optional[List[str]] = Field(None, max_length=MAX_IMAGES,
                                            description="base64 PNG/JPEG images, fitted with the store's recipe")
        k: StrictInt = Field(10, ge=1, le=MAX_K, description="neighbours per query")
        filter_class: Optional[Union[StrictInt, str]] = Field(None, description="only answers of this class")
        exclude_views: StrictBool = Field(False, description="ids: also leave out the other fits of the query's object")
        keep_self: StrictBool = Field(False, description="ids: let a stored INR be its own first answer")
        views: StrictInt = Field(1, ge=1, le=MAX_VIEWS, description="images: fits per image, embeddings averaged")
        resize: StrictBool = Field(False, description="images: resize to the store's image size")

    app = FastAPI(title="ssl_ws retrieval", version=__version__,
                  description="Nearest INRs by their weight-space embeddings (ssl_ws).")

    @app.exception_handler(SslWsError)
    async def _user_error(request: Request, exc: SslWsError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        err = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        msg = f"{where}: {err.get('msg', 'invalid request')}" if where else err.get("msg", "invalid request")
        return JSONResponse({"error": " ".join(str(msg).split())[:300]}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/info")
    def info():
        return searcher.info()

    def answer(req: QueryRequest):
        if not (req.ids or req.params or req.images):
            raise SslWsError("give at least one query: ids, params or images")
        label = searcher.class_label(req.filter_class)
        results = []
        if req.ids:
            results += searcher.rows(req.ids, req.k, keep_self=req.keep_self, exclude_views=req.exclude_views,
                                     label=label)
        if req.params:
            results += searcher.params(req.params, req.k, label=label)
        if req.images:
            blobs = [_b64(s, i) for i, s in enumerate(req.images)]
            images = searcher.decode_images(blobs, resize=req.resize, max_pixels=MAX_IMAGE_PIXELS)
            results += searcher.images(images, req.k, views=req.views, label=label)
        return JSONResponse({"results": results})

    @app.post("/query", response_model=None)
    async def query(req: QueryRequest):
        """Neighbours of every query of the request, in the order ids, params, images."""
        from starlette.concurrency import run_in_threadpool

        if req.params or req.images or (req.ids and len(req.ids) > 8):
            return await run_in_threadpool(answer, req)  # heavy work off the event loop
        return answer(req)  # a few stored INRs: under a millisecond, answered inline

    @app.get("/inr/{row}.png", response_class=Response)
    def inr_png(row: int):
        return Response(searcher.render_png(row), media_type="image/png",
                        headers={"Cache-Control": "public, max-age=3600"})

    page = (Path(__file__).parent / "static" / "index.html").read_text()

    @app.get("/", response_class=HTMLResponse)
    def index_page():
        return page

    return BodyLimit(app, max_body)


def _b64(text: str, i: int) -> bytes:
    if "," in text[:100] and text.startswith("data:"):  # a data URL from a browser
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SslWsError(f"images[{i}] is not base64") from None


def open_searcher(index_dir: str, store: Optional[str] = None, ckpt: Optional[str] = None, device: str = "cpu"):
    """The :class:`~ssl_ws.retrieve.searcher.Searcher` a server process answers with (its store checked), faiss
    on one thread: one query per request, so threads would only contend between concurrent requests."""
    import faiss

    from .searcher import Searcher

    faiss.omp_set_num_threads(1)
    return Searcher.open(index_dir, store, ckpt, device)


def app_from_env():
    """The app of ``ssl-ws serve`` in each uvicorn worker (arguments through :data:`ENV`)."""
    return create_app(open_searcher(os.environ[ENV["index"]], os.environ.get(ENV["store"]) or None,
                                    os.environ.get(ENV["ckpt"]) or None, os.environ.get(ENV["device"], "cpu")))
