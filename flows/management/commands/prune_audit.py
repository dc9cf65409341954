from django.core.management.base import BaseCommand

from flows import audit


class Command(BaseCommand):
    help = "Delete audit log entries older than FLOWS_AUDIT_RETENTION_DAYS (default 90)."

    def handle(self, *args: object, **options: object) -> None:
        deleted = audit.prune()
        self.stdout.write(
            f"Deleted {deleted} audit entries older than {audit.retention().days} days."
        )
