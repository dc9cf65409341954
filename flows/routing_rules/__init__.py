"""RabbitMQ's routing rules, and the dry-run every page's "where does it go?" comes from.

- `matching`: does one binding take a message, and why (direct, fanout, topic, headers;
  pure functions, tested on tables of cases).
- `dry_run`: how a message travels a topology: exchange-to-exchange bindings, alternate
  exchanges, the default exchange, CC/BCC (`route`, pure).
- `prediction`: the one `Prediction` type the publish page, the live page and `/api/route`
  share, and `predict`, which leaves the dashboard's own objects out first.
"""
