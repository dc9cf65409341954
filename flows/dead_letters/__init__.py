"""Dead-letter queues: what a queue of dead-lettered messages holds, grouped by why and
where from (`grouping`), read without losing a message (`reading`), and moved back or on,
one message at a time, confirmed before it is acked (`moving`)."""
