"""``ssl-ws query INDEX --id ROW -k 8``, ``--image path.png`` or ``--ids-file ids.txt``: nearest INRs.

Prints the neighbours (rank, row, label, class, object, view, similarity); the query INR
itself is never one of its answers (``--keep-self`` keeps it), ``--exclude-views`` also
leaves out the other fits of its image, ``--filter-class C`` keeps one class.
``--png out.png`` draws the query's render beside its neighbours' renders;
``--json out.json`` writes the neighbours with the exact config. ``--ids-file F`` answers
one query per row id in F (whitespace or comma separated) as JSON lines (stdout or ``--jsonl``).
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
    from ..eval.results import write_results
    from ..retrieve.searcher import Searcher
    from ._eval_common import config_of

    if args.k < 1:
        raise SslWsError(f"-k must be positive, got {args.k}")
    if args.jsonl:  # before any work: a destination that cannot be written
        parent = os.path.dirname(os.path.abspath(args.jsonl))
        if not os.path.isdir(parent):
            raise SslWsError(f"--jsonl {args.jsonl}: directory {parent} does not exist")
        if os.path.isdir(args.jsonl):
            raise SslWsError(f"--jsonl {args.jsonl} is a directory; give a file path")
    searcher = Searcher.open(args.index_dir, args.store, args.ckpt, args.device)  # the store checked once
    index = searcher.index
    names = searcher.class_names
    label = searcher.class_label(args.filter_class, "--filter-class")
    if args.ids_file:
        return _batch(args, searcher, label)
    if args.image is not None and os.path.isdir(args.image):
        return _batch_images(args, searcher, label)
    query_ws = None
    if args.row is not None:
        (answer,) = searcher.rows([args.row], args.k, keep_self=args.keep_self, exclude_views=args.exclude_views,
                                  label=label)
        lab = answer["query"]["label"]
        indexed = index.position_of_row(args.row) is not None
        label_txt = names[lab] if 0 <= lab < len(names) else str(lab)
        desc = f"row {args.row} ({label_txt}" + (", indexed" if indexed else ", not indexed") + ")"
        query_caption = ["query", label_txt, f"row {args.row}"]
        query_info = {"row": args.row, "label": lab, "class_name": label_txt, "indexed": indexed}
    else:
        image = searcher.load_images([args.image], resize=args.resize)
        answers, query_ws = searcher.images_with_fits(image, args.k, views=args.views, label=label,
                                                      names=[os.path.abspath(args.image)])
        answer = answers[0]
        desc = f"image {args.image} (fitted to {args.views} INR(s) with the store's recipe)"
        query_caption = ["query image", os.path.basename(args.image), "(its INR fit)"]
        query_info = {"image": os.path.abspath(args.image), "views": args.views}
    nb = answer["neighbours"]
    kind = index.info.get("index", {}).get("kind", "flat")
    print(f"query: {desc}; index {args.index_dir} ({kind}, {len(index)} INRs, encoder "
          f"{index.info.get('encoder', {}).get('identity')})")
    print(f"{'rank':>4} {'row':>8} {'label':>5}  {'class':<14} {'object':>7} {'view':>4} {'similarity':>10}")
    for r, n in enumerate(nb, 1):
        print(f"{r:>4} {n['row']:>8} {n['label']:>5}  {n['class_name'][:14]:<14} {n['object']:>7} {n['view']:>4} {n['similarity']:>10.4f}")

    if args.png:
        searcher.picture(answer, args.png, query_caption, query_ws=query_ws)
        print(f"picture -> {args.png}")
    if args.out:
        write_results(args.out, "query", {"query": query_info, "neighbours": nb}, config_of(args),
                      index={"path": os.path.abspath(args.index_dir), "kind": kind, "n": len(index),
                             "encoder": index.info.get("encoder")})
    return 0


def _read_ids(path):
    import re

    from ..files import regular_file

    try:
        text = regular_file(path, "--ids-file", limit=256 << 20).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SslWsError(f"cannot read --ids-file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    ids = []
    for tok in re.split(r"[\s,]+", text.strip()):
        if not tok:
            continue
        try:
            ids.append(int(tok))
        except ValueError:
            raise SslWsError(f"--ids-file {path}: {tok!r} is not a row id (integers separated by spaces, commas "
                             f"or new lines)") from None
    if not ids:
        raise SslWsError(f"--ids-file {path} holds no row ids")
    return ids


def _write_lines(args, answers, n: int) -> int:
    """JSON lines to --jsonl (or stdout)."""
    import json
    import sys

    if not args.jsonl:
        for ans in answers:
            sys.stdout.write(json.dumps(ans) + "\n")
        return 0
    from ..atomic import atomic_write
    from ..errors import user_os_errors

    with user_os_errors(f"cannot write {args.jsonl}"), atomic_write(args.jsonl) as out:  # all lines or none
        for ans in answers:
            out.write(json.dumps(ans) + "\n")
    print(f"{n} queries -> {args.jsonl}")
    return 0


def _batch(args, searcher, label):
    """--ids-file: one JSON line per query row (Searcher.rows)."""
    ids = _read_ids(args.ids_file)
    answers = searcher.rows(ids, args.k, keep_self=args.keep_self, exclude_views=args.exclude_views, label=label)
    return _write_lines(args, answers, len(ids))


def _batch_images(args, searcher, label):
    """--image FOLDER: one JSON line per image, the images fitted together (Searcher.images)."""
    import sys

    from ..retrieve.query import image_files

    if args.png:
        raise SslWsError("--png draws one query; with a folder of images use --jsonl (one line per image)")
    files = image_files(args.image)
    images = searcher.load_images(files, resize=args.resize)
    print(f"fitting {len(files)} image(s) x {args.views} view(s) with the store's recipe ...", file=sys.stderr)
    answers = searcher.images(images, args.k, views=args.views, label=label,
                              names=[os.path.abspath(f) for f in files])
    return _write_lines(args, answers, len(files))
