"""A shop whose rejected and expired orders are dead-lettered into `shop.dead`."""

from __future__ import annotations

from dataclasses import dataclass

import pika

from tests.support.tap_harness import amqp_channel
from tests.support.waiting import eventually

REJECTED = 30
EXPIRED = 10


@dataclass(frozen=True)
class Shop:
    vhost: str
    rejected_ids: tuple[str, ...]
    expired_ids: tuple[str, ...]

    def depth(self, queue: str) -> int:
        with amqp_channel(self.vhost) as channel:
            return channel.queue_declare(queue, passive=True).method.message_count

    def drain(self, queue: str) -> list[str]:
        """Take every message of `queue`: their message ids, in order."""
        ids = []
        with amqp_channel(self.vhost) as channel:
            while True:
                method, properties, _ = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return ids
                ids.append(properties.message_id)

    def peek(self, queue: str) -> list[str]:
        """The message ids of `queue` in order, given back (the test's own snapshot)."""
        ids = []
        with amqp_channel(self.vhost) as channel:
            while True:
                method, properties, _ = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                ids.append(properties.message_id)
        return ids


def declare_shop(vhost: str) -> None:
    with amqp_channel(vhost) as channel:
        channel.exchange_declare("shop", "direct")
        channel.exchange_declare("shop.dlx", "fanout")
        channel.queue_declare("shop.dead")
        channel.queue_bind("shop.dead", "shop.dlx")
        channel.queue_declare("orders", arguments={"x-dead-letter-exchange": "shop.dlx"})
        channel.queue_bind("orders", "shop", "order")
        channel.queue_declare(
            "orders.delay",
            arguments={"x-dead-letter-exchange": "shop.dlx", "x-message-ttl": 1},
        )
        channel.queue_bind("orders.delay", "shop", "later")
        channel.queue_declare("holding")
        channel.queue_bind("holding", "shop", "held")


def fill_shop(scratch_vhost: str) -> Shop:
    """The shop with REJECTED rejected and EXPIRED expired orders in `shop.dead`."""
    declare_shop(scratch_vhost)
    rejected = tuple(f"order-{n}" for n in range(REJECTED))
    expired = tuple(f"late-{n}" for n in range(EXPIRED))
    with amqp_channel(scratch_vhost) as channel:
        for message_id in rejected:
            channel.basic_publish(
                "shop",
                "order",
                message_id.encode(),
                pika.BasicProperties(message_id=message_id, headers={"n": 1}),
            )
        for _ in rejected:
            method, _, _ = channel.basic_get("orders", auto_ack=False)
            channel.basic_reject(method.delivery_tag, requeue=False)
        for message_id in expired:
            channel.basic_publish(
                "shop", "later", message_id.encode(), pika.BasicProperties(message_id=message_id)
            )
    shop = Shop(scratch_vhost, rejected, expired)
    eventually(
        lambda: shop.depth("shop.dead") == REJECTED + EXPIRED,
        what="every rejected and expired order dead-lettered",
    )
    return shop
