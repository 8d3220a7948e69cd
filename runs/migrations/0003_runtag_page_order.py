"""RunTag's index lists a tag's runs in the runs list's order, (-created_at, -id), so
that a page of a tag filter is read from it directly (RunFilter.filter_tag); it was
(-created_at, run) and a page in order needed a sort of every row of the tag.

RunTag's foreign keys lose their own single-column indexes, which composites lead
with (runtag_unique with the run, runtag_env_tag with the environment): two index
entries fewer per tag of every triggered run. As in 0002, only the indexes go: the
constraints stay as they are (AlterField would drop and re-validate them)."""

import django.db.models.deletion
from django.db import migrations, models

COLUMNS = ("run_id", "environment_id")


def _plain_indexes(schema_editor, column: str) -> list[str]:
    with schema_editor.connection.cursor() as cursor:
        found = schema_editor.connection.introspection.get_constraints(
            cursor, "runs_runtag"
        )
    return [
        name
        for name, info in found.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == [column]
        and not name.startswith("runtag_")
    ]


def drop_fk_indexes(apps, schema_editor):
    for column in COLUMNS:
        for name in _plain_indexes(schema_editor, column):
            schema_editor.execute(
                f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}"
            )


def restore_fk_indexes(apps, schema_editor):
    model = apps.get_model("runs", "runtag")
    for column in COLUMNS:
        field = model._meta.get_field(column.removesuffix("_id"))
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0002_fewer_run_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="runtag", name="runtag_env_tag"),
        migrations.AddIndex(
            model_name="runtag",
            index=models.Index(
                fields=["environment", "tag", "-created_at", "-run"],
                name="runtag_env_tag",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(drop_fk_indexes, restore_fk_indexes),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="runtag",
                    name="environment",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="runs.environment",
                    ),
                ),
                migrations.AlterField(
                    model_name="runtag",
                    name="run",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tag_rows",
                        to="runs.run",
                    ),
                ),
            ],
        ),
    ]
