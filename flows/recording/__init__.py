"""Recordings: what a vhost's tap saw, stored in the database, bounded in time and size.

- `store`: the database side (start, append a batch within the bounds, stop, read, export);
- `recorder`: the runtime member that joins a vhost's tap like a viewer and writes batches;
- `timeline`: pure, one message's story (published, routed, delivered, dead-lettered...)
  from the recorded events that carry its `message_id` or `correlation_id`.
"""
