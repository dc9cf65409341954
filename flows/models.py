from __future__ import annotations

from django.conf import settings
from django.db import models


class LoginLink(models.Model):
    """A one-time sign-in link, printed by `manage.py serve` for the local demo path.

    Only a hash of the token is stored: the database never holds a usable link.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"login link for {self.user} (expires {self.expires_at:%Y-%m-%d %H:%M})"


# --- the tap ------------------------------------------------------------------------------------


class TapFirehoseLease(models.Model):
    """A running firehose tap's promise to put a vhost's tracing back as it found it.

    Written before the tap turns tracing on and deleted after it restores it, so that a tap
    that crashed (kill -9, power cut) leaves a record: `manage.py tap --restore-tracing`, or
    the next tap to start, restores the vhost from it. The model also carries the
    `flows.use_firehose` permission: who may choose the firehose in the dashboard.
    """

    vhost = models.CharField(max_length=255, db_index=True)
    tracing_was_on = models.BooleanField()
    owner = models.CharField(max_length=255, help_text="host:pid of the tap process")
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField()

    class Meta:
        permissions = [("use_firehose", "Can switch on the firehose (tracing) to watch a vhost")]

    def __str__(self) -> str:
        return f"firehose lease on {self.vhost!r} by {self.owner}"


# --- publishing ---------------------------------------------------------------------------------


class PublishTemplate(models.Model):
    """A message saved under a name, to publish again in one click.

    `fields` holds the form's fields exactly as `flows.publishing.fields` reads them; they
    are checked again on every publish (the topology or the allow-list may have changed).
    Shared templates are visible to every user; only the owner (or a superuser) deletes one.

    The model also carries the permission to publish at all: `flows.publish_messages`.
    """

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="publish_templates"
    )
    shared = models.BooleanField(default=False)
    fields = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="publish_template_owner_name")
        ]
        permissions = [("publish_messages", "Can publish messages to the broker")]

    def __str__(self) -> str:
        return self.name


# --- demo scenarios -----------------------------------------------------------------------------


class DemoLoad(models.Model):
    """A demo scenario loaded into a vhost, and exactly what loading it created there.

    Written before the first change to the broker and deleted after the last one of the
    unload, so a load that crashed halfway can still be unloaded: unloading removes what this
    row names (the vhost itself when the load created it) and nothing else.
    """

    vhost = models.CharField(max_length=255)
    scenario = models.CharField(max_length=40)
    created_vhost = models.BooleanField(help_text="the load created the vhost; unload deletes it")
    granted_users = models.JSONField(
        default=list, help_text="users given permissions on a vhost that existed before"
    )
    declared = models.JSONField(
        default=dict, help_text="the exchanges, queues and bindings the load declared"
    )
    complete = models.BooleanField(default=False)
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["vhost", "scenario"], name="demo_load_vhost_scenario")
        ]

    def __str__(self) -> str:
        return f"demo {self.scenario!r} in vhost {self.vhost!r}"


# --- access (flows/access.py) -------------------------------------------------------------------


class VhostLimit(models.Model):
    """The vhosts a user, or every member of a group, may see and change: shell-style patterns.

    A user with no limit (of their own or of a group) has every vhost; with some, only the
    vhosts one of their patterns matches. The model also carries the dashboard's own
    permissions (`flows.access.PERMISSIONS` names each and the roles holding it).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE)
    patterns = models.JSONField(default=list, help_text='shell-style vhost patterns: ["demo-*"]')

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, group__isnull=True)
                | models.Q(user__isnull=True, group__isnull=False),
                name="vhost_limit_user_or_group",
            )
        ]
        permissions = [
            ("view_dashboard", "Can view the dashboard"),
            ("run_demo", "Can run demo scenarios' publishers and workers"),
            ("manage_demo", "Can load and unload demo scenarios"),
            ("move_messages", "Can move dead-lettered messages"),
            ("create_audience_links", "Can create audience links"),
            ("view_audit", "Can read the audit log"),
        ]

    def __str__(self) -> str:
        who = f"user {self.user}" if self.user_id else f"group {self.group}"
        return f"{who}: vhosts {', '.join(self.patterns)}"


# --- the audit log (flows/audit.py) -------------------------------------------------------------


class AuditEntry(models.Model):
    """One write the dashboard made (or tried to make) to a broker, or a change of a role.

    `username` is kept as it was, so an entry still says who after the account is gone;
    `details` never holds a secret (a message's size and id, never its body or headers).
    """

    at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, blank=True, db_index=True)
    action = models.CharField(max_length=40, db_index=True)
    vhost = models.CharField(max_length=255, blank=True, db_index=True)
    target = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict)
    ok = models.BooleanField(default=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.target}"


# --- audience links -----------------------------------------------------------------------------


class AudienceLink(models.Model):
    """A read-only, expiring, revocable URL that shows a demo vhost's live view to anyone.

    Made by an administrator on a scenario page for the people in the room (`flows.audience`).
    Only a hash of the token is stored: the URL is shown once, when it is made. Making one
    takes `flows.create_audience_links` (held by the admin role: `flows.access`).
    """

    token_sha256 = models.CharField(max_length=64, unique=True)
    vhost = models.CharField(max_length=255)
    scenario = models.CharField(max_length=40)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audience_links"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["expires_at", "id"]
        indexes = [models.Index(fields=["vhost", "scenario"], name="audience_link_vhost_scenario")]

    def __str__(self) -> str:
        return (
            f"audience link to {self.scenario!r} in vhost {self.vhost!r}"
            f" (expires {self.expires_at:%Y-%m-%d %H:%M})"
        )


# --- dead letters -------------------------------------------------------------------------------


class MessageMove(models.Model):
    """One move of dead-lettered messages (flows/dead_letters/moving.py): who moved what
    from where to where, and how it ended. A move whose process died stays `running`.

    Moving takes `flows.move_messages` (held by the admin role: `flows.access`).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    vhost = models.CharField(max_length=255)
    source_queue = models.CharField(max_length=255)
    target = models.CharField(max_length=600, help_text="back to origin, or exchange and key")
    selection = models.CharField(max_length=600, default="every message")
    state = models.CharField(max_length=20, default="running")
    total = models.PositiveIntegerField(default=0)
    moved = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"move from {self.source_queue!r} in {self.vhost!r} ({self.state})"


# --- recordings ---------------------------------------------------------------------------------


class Recording(models.Model):
    """A bounded recording of what a vhost's tap saw (flows/recording/): from `started_at`
    until `ends_at` or until `max_bytes` of events are stored, whichever comes first.

    `state`: `running`, then `stopped` (by a person), `expired` (its time was up), `full`
    (its size bound was reached: recording stopped there, nothing older was dropped) or
    `failed`. A recording whose process died stays `running` until its `ends_at` passes,
    and counts as over from then on. Starting one takes `flows.record` (the admin role).
    """

    RUNNING, STOPPED, EXPIRED, FULL, FAILED = "running", "stopped", "expired", "full", "failed"

    vhost = models.CharField(max_length=255)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    started_at = models.DateTimeField(auto_now_add=True)
    ends_at = models.DateTimeField()
    max_bytes = models.PositiveBigIntegerField()
    bytes_stored = models.PositiveBigIntegerField(default=0)
    events_stored = models.PositiveIntegerField(default=0)
    mode = models.CharField(max_length=20, default="", help_text="the tap's capture mode")
    state = models.CharField(max_length=20, default=RUNNING)
    stopped_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True, default="", help_text="why it stopped")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["vhost", "state"], name="recording_vhost_state")]
        permissions = [("record_vhost", "Can record a vhost's messages")]

    def __str__(self) -> str:
        return f"recording of {self.vhost!r} ({self.state})"


class RecordedEvent(models.Model):
    """One tap event (flows.tap.events.TapEvent, masked already) of a recording, as JSON,
    with the fields a message is followed by pulled out for the indexes."""

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField(help_text="order within the recording")
    kind = models.CharField(max_length=20)
    at = models.DateTimeField()
    exchange = models.CharField(max_length=255, blank=True, default="")
    routing_key = models.CharField(max_length=255, blank=True, default="")
    queue = models.CharField(max_length=255, blank=True, default="")
    message_id = models.CharField(max_length=255, blank=True, default="")
    correlation_id = models.CharField(max_length=255, blank=True, default="")
    event = models.JSONField()

    class Meta:
        ordering = ["recording", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["recording", "seq"], name="recorded_event_seq")
        ]
        indexes = [
            models.Index(fields=["message_id"], name="recorded_event_message_id"),
            models.Index(fields=["correlation_id"], name="recorded_event_correlation"),
            models.Index(fields=["routing_key"], name="recorded_event_routing_key"),
            models.Index(fields=["exchange"], name="recorded_event_exchange"),
            models.Index(fields=["queue"], name="recorded_event_queue"),
            models.Index(fields=["at"], name="recorded_event_at"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq} of recording {self.recording_id}"
