"""CSV import/export of contacts in the console (django-import-export).

Each row goes through `Contact.full_clean()`, so the console import applies the same
rules as every other path and reports every bad row with its line number; the console
only offers to confirm an import that has no bad row, so nothing lands half-way. The
bulk path for large files is `manage.py import_contacts` (messaging/importing.py).
"""

from import_export import fields, resources, widgets

from messaging.audit import record_audit
from messaging.models import Contact


class ContactResource(resources.ModelResource):
    attributes = fields.Field(attribute="attributes", column_name="attributes", widget=widgets.JSONWidget())

    class Meta:
        model = Contact
        fields = ("email", "phone", "external_id", "first_name", "last_name", "locale", "timezone", "attributes")
        import_id_fields = ("email",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def before_import_row(self, row, **kwargs) -> None:
        # Look existing contacts up by the normalised address, as they are stored.
        if row.get("email"):
            row["email"] = str(row["email"]).strip().lower()
        for name in ("locale", "timezone"):
            if name in row and row[name] in (None, ""):
                row[name] = Contact._meta.get_field(name).default

    def after_import(self, dataset, result, **kwargs) -> None:
        if kwargs.get("dry_run") or result.has_errors() or result.has_validation_errors():
            return
        totals = result.totals
        record_audit(
            actor=kwargs.get("user"),
            verb="imported",
            target_type="messaging.contact",
            changes={"rows": {"before": None, "after": {k: totals.get(k, 0) for k in ("new", "update", "skip")}}},
        )
