"""Growth in the console: program settings, read-only ledgers, staff actions with a reason."""

from growth.admin import giftcards, loyalty, referrals  # noqa: F401
