"""``diffugts serve``: load the models once and segment uploaded volumes over HTTP (loopback by default)."""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from ..allocator import keep_freed_memory
from ..errors import DiffuGTSError
from .options import add_weights_device_options, positive_int
from .segment import add_model_options, load_segmenter
from .server_token import add_token_option, read_token

DEFAULT_PORT = 8765


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="keep models loaded and serve segmentations over HTTP",
        description="Load the models once and serve `diffugts segment` over HTTP: upload a volume, queue jobs "
        "with prompts, follow their progress, fetch the same files a local run writes. New prompts on the same "
        "volume reuse its cached features. Listens on 127.0.0.1 unless --host says otherwise. Every request but "
        "/health must carry the token as 'Authorization: Bearer TOKEN': DIFFUGTS_TOKEN or --token-file, else, on "
        "127.0.0.1, a random one printed at start (any other address needs one given). Research software, not "
        "for clinical use.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; use an SSH tunnel)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    add_token_option(parser)
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a name clients reach the server by, accepted in their Host header (repeatable). "
                             "On 127.0.0.1 only this machine's loopback names are accepted besides these, which "
                             "stops web pages that rebind their own name to 127.0.0.1; on other addresses any "
                             "name is accepted unless some are given here")
    parser.add_argument("--max-upload-mb", type=positive_int, default=2048,
                        help="largest volume upload accepted, in MB (default 2048)")
    parser.add_argument("--work-dir", metavar="DIR",
                        help="where uploads and results live while the server runs: a fresh folder inside it, "
                             "removed at shutdown (default: the system's temporary folder)")
    parser.add_argument("--keep-volumes", type=positive_int, default=16,
                        help="uploaded volumes kept; the oldest unused one goes first (default 16)")
    parser.add_argument("--keep-jobs", type=positive_int, default=64,
                        help="jobs (and their result files) kept; the oldest finished one goes first (default 64)")
    parser.add_argument("--return-freed-memory", action="store_true",
                        help="give memory back to the system after each job: less memory held between jobs, "
                             "slower new prompts (by default the server keeps it for the next job)")
    parser.add_argument("--stop-with", type=positive_int, metavar="PID",
                        help="stop when the process PID has ended (Slicer passes its own, so that a crash of Slicer "
                             "does not leave the server running)")
    add_weights_device_options(parser)
    add_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve import create_app
    except ImportError as error:
        raise DiffuGTSError(f"diffugts serve needs FastAPI and uvicorn ({error})",
                            hint='Install them with: pip install "diffugts[serve]".') from None
    from ..serve.security import allowed_hosts, check_bind, new_token
    from ..serve.watchdog import stop_when_gone, watched_process

    token = read_token(args)
    check_bind(args.host, token)
    generated = token is None
    if generated:  # loopback without a token of the user's: any local program or web page could use it
        token = new_token()
    check_port_free(args.host, args.port)
    watched = watched_process(args.stop_with) if args.stop_with else None
    if args.work_dir and not Path(args.work_dir).is_dir():
        raise DiffuGTSError("--work-dir must be an existing folder", path=args.work_dir)
    if not args.return_freed_memory:
        keep_freed_memory()
    segmenter = load_segmenter(args)
    work_dir = Path(tempfile.mkdtemp(prefix="diffugts-serve-", dir=args.work_dir))
    try:
        app = create_app(segmenter, work_dir, token=token, hosts=allowed_hosts(args.host, args.allow_host),
                         max_upload_bytes=args.max_upload_mb * 2**20, max_volumes=args.keep_volumes,
                         max_jobs=args.keep_jobs)
        if generated:
            print(f"diffugts: no DIFFUGTS_TOKEN or --token-file given; this run's token is {token} "
                  f"(clients: export DIFFUGTS_TOKEN={token}; in Slicer: Setup > Server token)",
                  file=sys.stderr, flush=True)
        print(f"diffugts: serving on http://{args.host}:{args.port} (token required); Ctrl+C stops",
              file=sys.stderr, flush=True)
        server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port,
                                               access_log=False))  # clients poll: no line per request
        if watched is not None:
            def stop() -> None:
                print(f"diffugts: process {watched.pid} (--stop-with) has ended; stopping", file=sys.stderr,
                      flush=True)
                server.should_exit = True

            stop_when_gone(watched, stop)
        try:
            server.run()
        except KeyboardInterrupt:  # uvicorn raises the Ctrl+C (SIGINT) it shut down on again: a normal stop
            pass
        if not server.started:
            raise DiffuGTSError(f"the server could not start on {args.host}:{args.port}",
                                hint="The lines above say why; another --port may help.")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)  # the app removes it at shutdown; this covers a failed start
    return 0


def check_port_free(host: str, port: int) -> None:
    """Fail in a second, before the models load, when the address cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.create_server((host.strip("[]"), port), family=family).close()
    except OSError as error:
        raise DiffuGTSError(f"cannot listen on {host}:{port} ({error.strerror or error})",
                            hint="Choose another --port, or stop what uses this one.") from None
