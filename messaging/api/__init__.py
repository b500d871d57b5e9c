"""The REST API's shared plumbing (authentication, permissions, problem responses,
pagination, throttles, docs) and the messaging app's resources. Mounted by config/api.py;
the messaging resources are listed in `messaging.api.routes`."""
