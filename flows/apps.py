from django.apps import AppConfig


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
        # The process's state is made on first use; from now on it is stopped at exit at
        # the latest (the web process and `manage.py tap` stop it on SIGTERM and SIGINT).
        runtime().start()
