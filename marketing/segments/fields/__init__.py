"""What a segment rule can look at: one `SegmentField` per field, in a registry.

Growth registers its own fields (loyalty tier, referral count) from its AppConfig, so
this app never imports it. A field turns one validated rule into a `Q` over contacts;
anything it needs to count or join happens in a subquery, so a whole rule tree is still
one query.

- `registry`: what a rule and a field are, the operators, and the registry itself;
- `parsers`: a rule's value turned into a number, a day count, a date or a list;
- `builders`: the `Q` builders fields share (text, choice, date, per-contact aggregates,
  consent, events, orders, engagement);
- `json_lookups`: the attribute field over the contacts' JSON attributes, per database;
- `builtin`: the fields marketing registers from its AppConfig.
"""
