"""``ssl-ws query INDEX --id ROW -k 8``, ``--image path.png`` or ``--ids-file ids.txt``: nearest INRs.

Prints the neighbours (rank, row, label, class, object, view, similarity); the query INR
itself is never one of its answers (``--keep-self`` keeps it), ``--exclude-views`` also
leaves out the other fits of its image, ``--filter-class C`` keeps one class.
``--png out.png`` draws the query's render beside its neighbours' renders;
``--json out.json`` writes the neighbours with the exact config. ``--ids-file F`` answers
one query per row id in F (whitespace or comma separated) as JSON lines (stdout or ``--jsonl``).
Parsing and printing; the answers are :class:`~ssl_ws.retrieve.searcher.Searcher`'s and
:mod:`ssl_ws.retrieve.query`'s.
"""

from __future__ import annotations

import os

from ..errors import SslWsError


def configure(parser):
    parser.add_argument("index_dir", metavar="INDEX", help="index directory written by `ssl-ws index`")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--id", type=int, dest="row", metavar="ROW", help="store row id of the query INR")
    what.add_argument("--image", help="an image file: fitted to INRs with the store's recipe, embedded, searched; "
                      "a folder: every image in it (batch: one JSON line per image, see --jsonl)")
    what.add_argument("--ids-file", help="batch: a file of store row ids; one JSON line of neighbours per id")
    parser.add_argument("--keep-self", action="store_true", help="let a query row be its own first answer (default: left out)")
    parser.add_argument("--exclude-views", action="store_true", help="also leave out the other fits (views) of the query's image")
    parser.add_argument("--filter-class", help="only answers of this class (name or label number)")
    parser.add_argument("--jsonl", help="batch queries (--ids-file, --image FOLDER): write the JSON lines here "
                        "(default: stdout)")
    parser.add_argument("-k", type=int, default=8, help="neighbours to return (default: 8)")
    parser.add_argument("--png", help="write the query's render beside its neighbours' renders to this PNG")
    parser.add_argument("--json", dest="out", help="write the neighbours and the config to this JSON")
    parser.add_argument("--ckpt", help="encoder to embed with (must be the one the index was built with; default: its recorded path)")
    parser.add_argument("--store", help="the index's store, if it moved (default: its recorded path)")
    parser.add_argument("--views", type=int, default=1, help="INR fits of --image, embeddings averaged (default: 1)")
    parser.add_argument("--resize", action="store_true", help="resize an --image of another size to the store's")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")


def run(args):
    from ..retrieve.query import (answer_image_folder, answer_one, check_jsonl_path, neighbour_table, read_ids,
                                  write_answer)
    from ..retrieve.searcher import Searcher
    from ._eval_common import config_of

    if args.k < 1:
        raise SslWsError(f"-k must be positive, got {args.k}")
    if args.jsonl:  # before any work: a destination that cannot be written
        check_jsonl_path(args.jsonl)
    searcher = Searcher.open(args.index_dir, args.store, args.ckpt, args.device)  # the store checked once
    index = searcher.index
    label = searcher.class_label(args.filter_class, "--filter-class")
    if args.ids_file:
        return _lines(args, searcher.rows(read_ids(args.ids_file), args.k, keep_self=args.keep_self,
                                          exclude_views=args.exclude_views, label=label))
    if args.image is not None and os.path.isdir(args.image):
        if args.png:
            raise SslWsError("--png draws one query; with a folder of images use --jsonl (one line per image)")
        return _lines(args, answer_image_folder(searcher, args.image, args.k, views=args.views, label=label,
                                                resize=args.resize))
    one = answer_one(searcher, args.k, row=args.row, image=args.image, keep_self=args.keep_self,
                     exclude_views=args.exclude_views, label=label, views=args.views, resize=args.resize)
    kind = index.info.get("index", {}).get("kind", "flat")
    print(f"query: {one.description}; index {args.index_dir} ({kind}, {len(index)} INRs, encoder "
          f"{index.info.get('encoder', {}).get('identity')})")
    print(neighbour_table(one.neighbours))
    if args.png:
        searcher.picture(one.answer, args.png, one.caption, query_ws=one.query_ws)
        print(f"picture -> {args.png}")
    if args.out:
        write_answer(args.out, one, args.index_dir, index, config_of(args))
    return 0


def _lines(args, answers) -> int:
    """Batch answers as JSON lines to --jsonl (or stdout)."""
    from ..retrieve.query import write_jsonl

    write_jsonl(answers, args.jsonl)
    if args.jsonl:
        print(f"{len(answers)} queries -> {args.jsonl}")
    return 0
