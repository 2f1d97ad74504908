"""Serve the deployed models over HTTP: `python -m ml.serve [--host 127.0.0.1] [--port 8000]`.

    python -m ml.serve                                  # http://127.0.0.1:8000/ (the page)
    SERVE_API_KEY=... python -m ml.serve --host 0.0.0.0 # elsewhere: every /v1 call needs the key

On start it writes the deployment manifest from the warehouse (read-only, then closed: DuckDB
allows one writer, so the server never holds the file while it serves); afterwards it follows the
manifest that ml.train, ml.promote and ml.rollback rewrite, so a promotion or a rollback is
answered by the next request without a restart. Binding to an address other than loopback needs
an API key (`SERVE_API_KEY`, sent in the `X-API-Key` header). Routes, limits and what is refused:
`ml.api.app`; README "Serving".
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ml.api.app import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS, Settings, create_app
from ml.core.cli import ArgumentParser, positive_int, run
from ml.core.errors import UserError
from ml.core.warehouse import open_warehouse
from ml.serving.manifest import manifest_path, read_manifest, write_manifest

#: What uvicorn's worker processes read their settings from (`--workers` > 1).
ENVIRONMENT = {
    "manifest": "SERVE_MANIFEST",
    "max_rows": "SERVE_MAX_ROWS",
    "max_body_bytes": "SERVE_MAX_BODY_BYTES",
    "api_key": "SERVE_API_KEY",
}


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def sync_manifest(path: Path) -> str:
    """Rewrite the manifest from the warehouse; a line saying what happened. A warehouse that
    cannot be opened now (another process writes it) leaves the existing manifest in use."""
    try:
        with open_warehouse(read_only=True) as wh:
            write_manifest(wh, path)
        return f"deployments read from the warehouse into {path}"
    except UserError as err:
        if not path.is_file():
            raise
        return f"warning: the warehouse could not be read ({err}); serving {path} as it is"


def app_from_environment():
    """The application of a uvicorn worker process, from `ENVIRONMENT`."""
    env = os.environ
    key = env.get(ENVIRONMENT["api_key"]) or None
    app = create_app(
        Settings(
            manifest=Path(env.get(ENVIRONMENT["manifest"]) or manifest_path()),
            api_key=key,
            max_rows=int(env.get(ENVIRONMENT["max_rows"]) or DEFAULT_MAX_ROWS),
            max_body_bytes=int(env.get(ENVIRONMENT["max_body_bytes"]) or DEFAULT_MAX_BODY_BYTES),
        )
    )
    app.state.live.warm()  # load every model (and its explainer) before the first request
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(prog="python -m ml.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--max-rows", type=positive_int, default=DEFAULT_MAX_ROWS,
        help=f"rows per request at most (default {DEFAULT_MAX_ROWS:,}; more is a 413)",
    )  # fmt: skip
    parser.add_argument(
        "--max-body-mb", type=positive_int, default=DEFAULT_MAX_BODY_BYTES // 2**20,
        help="request body size at most, in MiB (default %(default)s; more is a 413)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=positive_int, default=1,
        help="worker processes (default 1; each loads the models once)",
    )  # fmt: skip
    parser.add_argument(
        "--no-sync", action="store_true",
        help="serve the manifest as it is, without reading the warehouse first",
    )  # fmt: skip
    args = parser.parse_args(argv)

    key = os.environ.get(ENVIRONMENT["api_key"]) or None
    if not is_loopback(args.host) and key is None:
        raise UserError(
            f"binding to {args.host} (not loopback) needs an API key: set SERVE_API_KEY; "
            f"clients send it in the X-API-Key header"
        )
    path = manifest_path()
    if not args.no_sync:
        print(sync_manifest(path), file=sys.stderr)
    tasks = sorted(read_manifest(path)["tasks"])
    if not tasks:
        raise UserError("no deployed model to serve: run `make run` or `python -m ml.train`")
    os.environ[ENVIRONMENT["manifest"]] = str(path)
    os.environ[ENVIRONMENT["max_rows"]] = str(args.max_rows)
    os.environ[ENVIRONMENT["max_body_bytes"]] = str(args.max_body_mb * 2**20)
    import uvicorn  # the server only when serving: --help and refusals stay fast

    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"serving {', '.join(tasks)} on http://{shown}:{args.port}/ "
        f"({'API key required' if key else 'no API key'}; Ctrl+C stops)",
        flush=True,
    )
    uvicorn.run(
        "ml.serve:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    run(main, "ml.serve")
