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
    from ..devices import resolve_device
    from ..eval.index import RetrievalIndex
    from ..eval.query import (check_recorded_store, check_row, embed_image, embed_row, index_encoder, index_store,
                              load_image)
    from ..eval.results import write_results
    from ._eval_common import config_of

    if args.k < 1:
        raise SslWsError(f"-k must be positive, got {args.k}")
    if args.jsonl:  # before any work: a destination that cannot be written
        parent = os.path.dirname(os.path.abspath(args.jsonl))
        if not os.path.isdir(parent):
            raise SslWsError(f"--jsonl {args.jsonl}: directory {parent} does not exist")
        if os.path.isdir(args.jsonl):
            raise SslWsError(f"--jsonl {args.jsonl} is a directory; give a file path")
    device = resolve_device(args.device)
    index = RetrievalIndex.load(args.index_dir)
    if args.store:
        index_store(index, args.store)  # checked against what the index recorded, once
    else:
        check_recorded_store(index)
    names = index.info.get("class_names") or []
    label = _class_filter(args.filter_class, names)
    if args.ids_file:
        return _batch(args, index, label, device)
    if args.image is not None and os.path.isdir(args.image):
        return _batch_images(args, index, label, device)
    need_store = bool(args.png) or args.image is not None
    model = store = None
    query_ws = None
    if args.row is not None:
        check_row(index, args.row)
        indexed = index.position_of_row(args.row) is not None
        if args.ckpt or not indexed:
            model = index_encoder(index, args.ckpt).to(device)
        if need_store or not indexed:
            store = index_store(index, args.store)
        q = embed_row(index, args.row, model, store, device)
        if store is not None:
            lab = int(store.labels[args.row])
        else:
            lab = int(index.labels[index.position_of_row(args.row)])
        label_txt = names[lab] if 0 <= lab < len(names) else str(lab)
        desc = f"row {args.row} ({label_txt}" + (", indexed" if indexed else ", not indexed") + ")"
        query_caption = ["query", label_txt, f"row {args.row}"]
        query_info = {"row": args.row, "label": lab, "class_name": label_txt, "indexed": indexed}
    else:
        model = index_encoder(index, args.ckpt).to(device)
        store = index_store(index, args.store)
        size = tuple(index.info.get("image_size") or store.image_size)
        image = load_image(args.image, int(index.info.get("channels", store.channels)), size, resize=args.resize)
        q, query_ws = embed_image(index, image, model, store, views=args.views, device=device)
        desc = f"image {args.image} (fitted to {args.views} INR(s) with the store's recipe)"
        query_caption = ["query image", os.path.basename(args.image), "(its INR fit)"]
        query_info = {"image": os.path.abspath(args.image), "views": args.views}

    exclude_rows = [] if args.keep_self or args.row is None else [args.row]
    exclude_objects = []
    if args.exclude_views and args.row is not None:
        exclude_objects = [int(store.object_ids[args.row]) if store is not None
                           else int(index.object_ids[index.position_of_row(args.row)])]
    nb = index.neighbours(q, args.k, exclude_rows=exclude_rows, exclude_objects=exclude_objects, label=label)
    kind = index.info.get("index", {}).get("kind", "flat")
    print(f"query: {desc}; index {args.index_dir} ({kind}, {len(index)} INRs, encoder "
          f"{index.info.get('encoder', {}).get('identity')})")
    print(f"{'rank':>4} {'row':>8} {'label':>5}  {'class':<14} {'object':>7} {'view':>4} {'similarity':>10}")
    for r, n in enumerate(nb, 1):
        print(f"{r:>4} {n['row']:>8} {n['label']:>5}  {n['class_name'][:14]:<14} {n['object']:>7} {n['view']:>4} {n['similarity']:>10.4f}")

    if args.png:
        from ..eval.gallery import neighbour_captions, query_picture, render_rows
        from ..inr.render import render_image

        h, w = store.image_size
        if query_ws is not None:
            q_img = render_image(query_ws[0].to(device), int(h), int(w)).clamp(0, 1).cpu()[0]
        else:
            q_img = render_rows(store, [args.row], device=device)[0]
        nb_imgs = render_rows(store, [n["row"] for n in nb], device=device)
        match = [n["label"] == query_info["label"] for n in nb] if "label" in query_info else None
        query_picture(q_img, nb_imgs, query_caption, neighbour_captions(nb), path=args.png, match=match)
        print(f"picture -> {args.png}")
    if args.out:
        write_results(args.out, "query", {"query": query_info, "neighbours": nb}, config_of(args),
                      index={"path": os.path.abspath(args.index_dir), "kind": kind, "n": len(index),
                             "encoder": index.info.get("encoder")})
    return 0


def _class_filter(text, names):
    """``--filter-class``: a class name of the index or a label number."""
    if text is None:
        return None
    if text in names:
        return names.index(text)
    try:
        lab = int(text)
    except ValueError:
        lab = -1
    if lab < 0 or (names and lab >= len(names)):
        raise SslWsError(f"--filter-class {text!r} is neither a class name ({', '.join(names[:12])}) nor a label "
                         f"0..{max(len(names) - 1, 0)}")
    return lab


def _read_ids(path):
    import re

    try:
        text = open(path).read()
    except OSError as exc:
        raise SslWsError(f"cannot read --ids-file {path}: {exc.strerror or exc}") from None
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
    if args.jsonl:
        print(f"{n} queries -> {args.jsonl}")
    return 0


def _batch(args, index, label, device):
    """--ids-file: one JSON line per query row (eval.query.answer_rows)."""
    from ..eval.query import answer_rows, check_row, index_encoder, index_store

    ids = _read_ids(args.ids_file)
    for row in ids:  # every id checked before the first answer is written
        check_row(index, row)
    model = store = None
    if any(index.position_of_row(r) is None for r in ids):  # rows outside the index are embedded by its encoder
        model = index_encoder(index, args.ckpt).to(device)
        store = index_store(index, args.store)
    answers = answer_rows(index, ids, args.k, keep_self=args.keep_self, exclude_views=args.exclude_views,
                          label=label, model=model, store=store, device=device)
    return _write_lines(args, answers, len(ids))


def _batch_images(args, index, label, device):
    """--image FOLDER: one JSON line per image, the images fitted together (eval.query.answer_images)."""
    import sys

    from ..eval.query import answer_images, image_files, index_encoder, index_store

    if args.png:
        raise SslWsError("--png draws one query; with a folder of images use --jsonl (one line per image)")
    files = image_files(args.image)
    model = index_encoder(index, args.ckpt).to(device)
    store = index_store(index, args.store)
    print(f"fitting {len(files)} image(s) x {args.views} view(s) with the store's recipe ...", file=sys.stderr)
    answers = list(answer_images(index, files, args.k, model, store, views=args.views, resize=args.resize,
                                 label=label, device=device))
    return _write_lines(args, answers, len(files))
