"""``ssl-ws serve INDEX``: the retrieval index over HTTP (:mod:`ssl_ws.retrieve.service`).

    ssl-ws serve runs/quickstart/index --port 8000
    curl -s localhost:8000/query -H 'content-type: application/json' -d '{"ids": [3], "k": 5}'
"""

from __future__ import annotations

from ..errors import SslWsError


def configure(parser) -> None:
    parser.add_argument("index_dir", metavar="INDEX", help="index directory written by `ssl-ws index`")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, this machine "
                                                            "only; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    parser.add_argument("--workers", type=int, default=1, help="server processes, each with its own copy of the "
                                                               "index (default: 1)")
    parser.add_argument("--store", default=None, help="the indexed store, where it moved (default: the path the index "
                                                      "recorded; it must hold the rows the index was built from)")
    parser.add_argument("--ckpt", default=None, help="the index's encoder, where it moved (default: recorded path)")
    parser.add_argument("--device", default="cpu", help="where images are fitted and INRs embedded (default: cpu)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))


def run(args) -> int:
    import os

    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise SslWsError("ssl-ws serve needs FastAPI and uvicorn: pip install -e \".[serve]\"") from None
    from ..retrieve.service import ENV, create_app, open_searcher

    if not 0 < args.port < 65536:
        raise SslWsError(f"--port must be 1..65535, got {args.port}")
    if args.workers < 1:
        raise SslWsError(f"--workers must be at least 1, got {args.workers}")
    # load (and check) once here: a bad index or a changed store is refused before the server starts
    searcher = open_searcher(args.index_dir, args.store, args.ckpt, args.device)
    print(f"serving {args.index_dir} ({len(searcher.index)} INRs) on http://{args.host}:{args.port}/ "
          f"(API docs: /docs); Ctrl-C stops", flush=True)
    if args.workers == 1:
        uvicorn.run(create_app(searcher), host=args.host, port=args.port, log_level=args.log_level)
        return 0
    os.environ.update({ENV["index"]: os.path.abspath(args.index_dir), ENV["store"]: args.store or "",
                       ENV["ckpt"]: args.ckpt or "", ENV["device"]: args.device})
    uvicorn.run("ssl_ws.retrieve.service:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level)
    return 0
