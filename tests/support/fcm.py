"""A Google service account for tests of FCM HTTP v1: its JSON names a local token endpoint
(`token_uri`), so google-auth mints bearer tokens on loopback as it would at Google."""

import json

from cryptography.hazmat.primitives import serialization

PROJECT = "mailroom-demo"
CLIENT_EMAIL = "push@mailroom-demo.iam.gserviceaccount.com"


def service_account(key, token_uri: str) -> str:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "1",
            "token_uri": token_uri,
        }
    )
