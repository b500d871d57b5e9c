"""Migration operations for tables that are big and busy in production."""

from django.db import migrations


class AddIndexConcurrently(migrations.AddIndex):
    """AddIndex that, on PostgreSQL, builds the index CONCURRENTLY: the outbox keeps taking
    writes while a new index over millions of rows is built (a plain CREATE INDEX blocks them
    for the whole build). Elsewhere a plain AddIndex. The migration must say `atomic = False`."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if schema_editor.connection.vendor != "postgresql" or not self.allow_migrate_model(schema_editor.connection.alias, model):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if schema_editor.connection.vendor != "postgresql" or not self.allow_migrate_model(schema_editor.connection.alias, model):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        schema_editor.remove_index(model, self.index, concurrently=True)
