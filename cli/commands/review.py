"""hmr review: a local web page to inspect and curate the samples of schema stores."""

from __future__ import annotations

import argparse

COMMAND = "review"
HELP = "browse stores in a local web page: filter, sort, view keypoints and meshes, mark samples excluded"
EXAMPLE = "hmr review stores/3dpw_test.zarr --eval runs/hmr/eval-3dpw --port 8000"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stores", nargs="+", help="schema-v1 stores (*.zarr / *.npz)")
    p.add_argument("--eval", action="append", default=[], metavar="RESULTS_DIR",
                   help="an 'hmr evaluate' output folder: per-sample model errors to filter and sort by (repeatable)")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0: any free one)")
    p.add_argument("--body-model", help="SMPL folder for the meshes (default: $HMR_BODY_MODEL or the mannequin)")
    p.add_argument("--smplx-model", help="SMPL-X folder for samples with SMPL-X only, e.g. PROX, AGORA "
                                         "(default: $HMR_SMPLX_MODEL or the SMPL-X mannequin)")
    p.add_argument("--list-marks", action="store_true", help="print the curation marks of the stores and exit")


def run(args: argparse.Namespace) -> int:
    if args.list_marks:
        from hmr.review.marks import format_marks

        for store in args.stores:
            print(format_marks(store))
        return 0
    from hmr.review.index import ReviewIndex
    from hmr.review.server import make_server

    server = make_server(ReviewIndex(args.stores, args.eval, args.body_model), args.port, body_model=args.body_model,
                         smplx_model=args.smplx_model)
    host, port = server.server_address[:2]
    print(f"hmr review: http://{host}:{port}/  ({len(args.stores)} store(s); Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
