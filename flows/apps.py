from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class FlowsConfig(AppConfig):
    name = "flows"
    verbose_name = "RabbitMQ flows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # pika 1.4 cannot encode float header values and decodes doubles as integers; every
        # process that publishes or taps (the web process, `manage.py tap`) needs the fix.
        from flows.broker import float_headers
        from flows.runtime import runtime

        float_headers.install()
        # The role groups follow `flows.access.ROLES` after every migrate (and every flush
        # of a test database, which empties them).
        post_migrate.connect(_sync_roles, sender=self)
        # The process's state is made on first use; from now on it is stopped at exit at
        # the latest (the web process and `manage.py tap` stop it on SIGTERM and SIGINT).
        runtime().start()


def _sync_roles(sender: AppConfig, **kwargs: Any) -> None:
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    from flows.access import sync_roles

    sync_roles(Group, Permission, ContentType)
