"""Django's SQLite backend, with datetimes read back at less cost.

Every DateTimeField value read from SQLite goes through Django's
`convert_datetimefield_value`, which reads `settings.USE_TZ` (a lazy-settings lookup),
checks awareness and calls `make_aware`: six times per outbox row, 500 rows a claimed
batch, about 4 % of an email's sending CPU (bench/_profile_send.py). With time zone support
on and the connection's zone UTC (the stock settings), the result is the naive value
SQLite's registered converter parsed, with UTC attached: that is done here in one step.
Every other case is Django's own.
"""

import datetime

from django.db.backends.sqlite3 import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def convert_datetimefield_value(self, value, expression, connection):
        if value is None:
            return None
        # connection.timezone is cached on the connection, and reset when USE_TZ or TIME_ZONE change
        if value.__class__ is datetime.datetime and value.tzinfo is None and self.connection.timezone is datetime.UTC:
            return value.replace(tzinfo=datetime.UTC)
        return super().convert_datetimefield_value(value, expression, connection)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
