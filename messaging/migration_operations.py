"""Migration operations for tables that grow large while Mailroom is running.

`AddIndexWithoutLocking` builds an index with CREATE INDEX CONCURRENTLY on PostgreSQL: a
plain CREATE INDEX blocks every write to the table until it is done, and on a five-million-
row outbox that is a minute in which nothing can be queued or sent. Elsewhere (SQLite) it is
a plain AddIndex. The migration using it must say `atomic = False` (PostgreSQL refuses to
build concurrently inside a transaction).
"""

from django.db.migrations.operations import AddIndex


class AddIndexWithoutLocking(AddIndex):
    atomic = False

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.add_index(model, self.index, concurrently=True)
            else:
                schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.remove_index(model, self.index, concurrently=True)
            else:
                schema_editor.remove_index(model, self.index)

    def describe(self):
        return f"Create index {self.index.name} on {self.model_name} without blocking writes (PostgreSQL)"
