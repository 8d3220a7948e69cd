"""`manage.py worker`: a worker process (run any number of them on PostgreSQL)."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from runs.engine.worker import Worker
from runs.environments import ensure_default_environments

DEMO_MODULE = "runs.demo.tasks"


class Command(BaseCommand):
    help = (
        "Execute runs: claims queued runs, runs each attempt in a child process, "
        "schedules delays, retries and TTLs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--concurrency",
            type=int,
            default=4,
            help="attempts executed at once (default 4)",
        )
        parser.add_argument(
            "--env",
            action="append",
            dest="environments",
            help="environment slug to serve (repeatable; default: all)",
        )
        parser.add_argument(
            "--tasks",
            action="append",
            default=[],
            help="extra task module to import (repeatable)",
        )
        parser.add_argument(
            "--demo", action="store_true", help="also execute the demo tasks"
        )
        parser.add_argument(
            "--no-scheduler",
            action="store_true",
            help="leave delays, retries, TTLs and recovery to other workers",
        )
        parser.add_argument(
            "--shutdown-grace",
            type=float,
            default=30.0,
            help="on SIGTERM/SIGINT, seconds running attempts get to finish before "
            "their runs are requeued (default 30; a second signal stops at once)",
        )

    def handle(
        self,
        *args,
        concurrency,
        environments,
        tasks,
        demo,
        no_scheduler,
        shutdown_grace,
        **options,
    ):
        ensure_default_environments()
        worker = Worker(
            concurrency=max(1, concurrency),
            environments=environments,
            modules=[*tasks, *([DEMO_MODULE] if demo else [])],
            run_scheduler=not no_scheduler,
            shutdown_grace=max(0.0, shutdown_grace),
        )

        def stop(signum, frame) -> None:
            if worker.draining:
                self.stdout.write("Stopping now: running attempts are requeued")
            else:
                self.stdout.write(
                    f"Stopping: running attempts get {shutdown_grace:g}s to finish "
                    "(signal again to stop now)"
                )
            worker.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)
        self.stdout.write(
            f"Worker {worker.worker_id} starting (concurrency {concurrency})"
        )
        worker.run()
        self.stdout.write("Worker stopped")
