"""`calmtrack` console script: migrate, serve, create-admin, worker."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from pydantic import ValidationError


def _migrate(_args: argparse.Namespace) -> int:
    from api import migrate
    from api.settings import database_url

    migrate.upgrade(database_url())
    print(f"database at revision {migrate.head_revision()}")
    return 0


# In-flight requests get this long to finish after SIGTERM; below the 30 s most orchestrators wait before SIGKILL.
GRACEFUL_SHUTDOWN_SECONDS = 25


def _serve(args: argparse.Namespace) -> int:
    import signal

    import uvicorn

    from api.settings import get_settings

    get_settings()  # a configuration error is reported here, once, rather than by each worker's traceback
    # Uvicorn stops gracefully on SIGTERM and then raises the signal again so that the default action (death by
    # signal) follows; the orderly stop it completed is an exit 0 here, as it is for supervisors and orchestrators.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # An import string and a factory: with workers > 1 every process builds its own app (and database pool).
    # Uvicorn's own access log prints raw paths and query strings, which can carry PHI; ours logs route templates.
    uvicorn.run("api.app:create_app", factory=True, workers=args.workers, host=args.host, port=args.port,
                access_log=False, proxy_headers=True, forwarded_allow_ips=args.forwarded_allow_ips,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS, log_level="info")
    return 0


def _exit_cleanly(_signal: int, _frame: object) -> None:
    raise SystemExit(0)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _create_admin(args: argparse.Namespace) -> int:
    from api.db import create_engine, session_factory
    from api.errors import ProblemError
    from api.settings import get_settings
    from api.users.schemas import UserCreate
    from api.users.service import bootstrap_admin

    password = args.password or getpass.getpass("Password for the new admin: ")
    try:
        request = UserCreate(email=args.email, full_name=args.full_name or args.email, role="admin", password=password)
    except ValidationError as exc:
        for error in exc.errors():
            print(f"error: {'.'.join(str(p) for p in error['loc'])}: {error['msg']}", file=sys.stderr)
        return 2

    async def run() -> int:
        engine = create_engine(get_settings().database_url)
        try:
            async with session_factory(engine)() as session:
                user = await bootstrap_admin(session, args.organization, request)
                print(f"created admin {user.email} ({user.id}) in organization {user.organization_id}")
                return 0
        except ProblemError as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _worker(args: argparse.Namespace) -> int:
    from api import worker
    from api.db import create_engine, session_factory
    from api.logging import configure_logging
    from api.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level)

    async def run() -> int:
        engine = create_engine(settings.database_url)
        try:
            if args.once:
                produced = await worker.run_once(session_factory(engine), settings)
                print(", ".join(f"{name}: {count}" for name, count in produced.items()))
            else:
                await worker.run_forever(session_factory(engine), settings)
            return 0
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="calmtrack", description="Calmtrack API server and administration")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="apply database migrations up to the latest revision").set_defaults(run=_migrate)

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_positive, default=1,
                       help="server processes sharing the port (default 1); about one per core")
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1", help="proxies trusted for X-Forwarded-*")
    serve.set_defaults(run=_serve)

    admin = commands.add_parser("create-admin", help="create an organization (if new) and an admin login")
    admin.add_argument("--organization", required=True)
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", help="prompted for when omitted")
    admin.add_argument("--full-name")
    admin.set_defaults(run=_create_admin)

    work = commands.add_parser("worker", help="run the periodic jobs (overdue assessments); several may run at once")
    work.add_argument("--once", action="store_true", help="run every job once, then exit (cron, tests)")
    work.set_defaults(run=_worker)

    args = parser.parse_args(argv)
    from api.settings import ConfigurationError

    try:
        return args.run(args)
    except ConfigurationError as error:
        print(f"calmtrack: configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
