"""Domain errors: a stable code for machines and a translated message for people.

One place (`describe_error`) turns them into a console message, an API problem body or
a log line, so the wording is never written twice.
"""

from django.core.exceptions import ValidationError


class MailroomError(Exception):
    code = "mailroom_error"

    def __init__(self, message: str, *, code: str | None = None, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}

    def __str__(self) -> str:
        return str(self.message)


class InvalidInput(MailroomError):
    code = "invalid"

    @classmethod
    def from_validation_error(cls, error: ValidationError) -> "InvalidInput":
        fields = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
        text = "; ".join(f"{name}: {' '.join(msgs)}" if name != "__all__" else " ".join(msgs) for name, msgs in fields.items())
        return cls(text, fields=fields)


class DuplicateContact(MailroomError):
    code = "duplicate_contact"


class NotAllowed(MailroomError):
    code = "not_allowed"


def describe_error(error: MailroomError) -> dict:
    """The problem body shared by the API and logs."""
    return {"code": error.code, "detail": str(error), "fields": error.fields}
