from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("flows", "0002_publish_templates"),
    ]

    operations = [
        migrations.CreateModel(
            name="TapFirehoseLease",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("vhost", models.CharField(db_index=True, max_length=255)),
                ("tracing_was_on", models.BooleanField()),
                ("owner", models.CharField(help_text="host:pid of the tap process", max_length=255)),
                ("started_at", models.DateTimeField(auto_now_add=True)),
                ("heartbeat_at", models.DateTimeField()),
            ],
            options={
                "permissions": [("use_firehose", "Can switch on the firehose (tracing) to watch a vhost")],
            },
        ),
    ]
