from django.core.management.base import BaseCommand, CommandParser

from flows.login_links import demo_user, issue_login_link


class Command(BaseCommand):
    help = "Print a one-time sign-in link for the passwordless demo user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: object, base_url: str, **options: object) -> None:
        token = issue_login_link(demo_user())
        self.stdout.write(f"{base_url.rstrip('/')}/accounts/link/{token}/")
