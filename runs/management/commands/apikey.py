"""`manage.py apikey <env>`: print an environment's secret API key (and nothing else)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Q

from runs.environments import ensure_default_environments
from runs.models import Environment


class Command(BaseCommand):
    help = "Print the secret API key of an environment (dev, staging, prod or a preview branch)."

    def add_arguments(self, parser):
        parser.add_argument("env", help="environment slug or preview branch name")
        parser.add_argument(
            "--regenerate",
            action="store_true",
            help="issue a new key first (the old one stops working)",
        )

    def handle(self, *args, env, regenerate, **options):
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError(
                "The database is not set up yet: run `manage.py migrate` "
                "(or `manage.py serve`, which migrates) first"
            )
        ensure_default_environments()
        environment = Environment.objects.filter(
            Q(slug=env) | Q(branch_name=env)
        ).first()
        if environment is None:
            slugs = ", ".join(Environment.objects.values_list("slug", flat=True))
            raise CommandError(f"No environment {env!r} (have: {slugs})")
        if regenerate:
            environment.regenerate_api_key()
        self.stdout.write(environment.api_key)
