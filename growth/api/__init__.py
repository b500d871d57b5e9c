"""Growth's API, mounted by config/api.py under /api/v1/: referrals (a contact's code and
what it brought), loyalty (summary, ledger, redeem) and gift cards (a contact's cards,
redeem by code, refund). Thin views over growth.queries and the growth actions; the
resources are listed in `growth.api.routes`."""
