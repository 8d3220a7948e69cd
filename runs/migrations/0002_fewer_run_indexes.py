"""Fewer index entries per status change of a run (issue 7: a bulk cancel rewrites
100,000 runs, and every index of runs_run gets a new entry for each, status being
indexed): the foreign-key indexes Django adds on its own go where a composite or a
partial index covers them, friendly_id keeps one unique index (not also a LIKE one),
the links most runs lack (parent, root, replayed_from, deployment) get partial
indexes, run_env_is_test becomes partial (WHERE is_test), run_env_version leaves
out runs without a version (not started yet), the unused
lower(idempotency_key_user) index goes, and so do runs_runevent's run_id index
(runevent_run leads with it) and its unused environment_id index.

One index is added: run_claimable_queue, each queue's queued runs in claim order,
so that the worker's claim skips a paused queue instead of walking its runs.

The foreign keys themselves are kept as they are: only their indexes are dropped
(AlterField would drop and re-add, i.e. re-validate, each constraint)."""

import django.db.models.deletion
from django.db import migrations, models

import runs.models

# (model, field) whose own single-column index goes.
UNINDEXED = [
    ("bulkactionitem", "new_run"),
    ("run", "batch"),
    ("run", "deployment"),
    ("run", "environment"),
    ("run", "parent"),
    ("run", "replayed_from"),
    ("run", "root"),
    ("runevent", "environment_id"),
    ("runevent", "run"),
]


def _single_column_indexes(schema_editor, table: str, column: str) -> list[str]:
    """Names of the plain (not unique, not partial-by-name) indexes on just `column`."""
    with schema_editor.connection.cursor() as cursor:
        found = schema_editor.connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in found.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == [column]
        and not name.startswith(("run_", "bulkitem_", "runevent_"))
    ]


def drop_fk_indexes(apps, schema_editor):
    for model_name, field_name in UNINDEXED:
        model = apps.get_model("runs", model_name)
        column = model._meta.get_field(field_name).column
        for name in _single_column_indexes(schema_editor, model._meta.db_table, column):
            schema_editor.execute(
                f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}"
            )


def restore_fk_indexes(apps, schema_editor):
    for model_name, field_name in UNINDEXED:
        model = apps.get_model("runs", model_name)
        field = model._meta.get_field(field_name)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(drop_fk_indexes, restore_fk_indexes),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="bulkactionitem",
                    name="new_run",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="runs.run",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="batch",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="runs",
                        to="runs.batch",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="deployment",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="runs",
                        to="runs.deployment",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="environment",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="runs",
                        to="runs.environment",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="parent",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="children",
                        to="runs.run",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="replayed_from",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="replays",
                        to="runs.run",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="root",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="descendants",
                        to="runs.run",
                    ),
                ),
                migrations.AlterField(
                    model_name="runevent",
                    name="environment_id",
                    field=models.BigIntegerField(),
                ),
                migrations.AlterField(
                    model_name="runevent",
                    name="run",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="runs.run",
                    ),
                ),
            ],
        ),
        migrations.RemoveIndex(
            model_name="run",
            name="run_env_is_test",
        ),
        migrations.RemoveIndex(
            model_name="run",
            name="run_idempotency_user",
        ),
        migrations.AlterField(
            model_name="run",
            name="friendly_id",
            field=models.CharField(default=runs.models.new_run_id, max_length=40),
        ),
        migrations.AddIndex(
            model_name="bulkactionitem",
            index=models.Index(
                condition=models.Q(("new_run__isnull", False)),
                fields=["new_run"],
                name="bulkitem_new_run",
            ),
        ),
        migrations.RemoveIndex(
            model_name="run",
            name="run_env_version",
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("version", ""), _negated=True),
                fields=["environment", "version", "-created_at", "-id"],
                name="run_env_version",
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("status", "QUEUED")),
                fields=["environment", "queue", "queue_timestamp", "id"],
                name="run_claimable_queue",
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("is_test", True)),
                fields=["environment", "-created_at", "-id"],
                name="run_env_test",
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("parent__isnull", False)),
                fields=["parent", "created_at", "id"],
                name="run_parent",
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("root__isnull", False)),
                fields=["root"],
                name="run_root",
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("replayed_from__isnull", False)),
                fields=["replayed_from", "created_at", "id"],
                name="run_replayed_from",
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("deployment__isnull", False)),
                fields=["deployment"],
                name="run_deployment",
            ),
        ),
        migrations.AddConstraint(
            model_name="run",
            constraint=models.UniqueConstraint(
                fields=("friendly_id",), name="run_unique_friendly_id"
            ),
        ),
    ]
