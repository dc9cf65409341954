"""`python manage.py adduser NAME --role ROLE [--vhosts PATTERNS] [--password-stdin]`.

Creates the account, or changes an existing one's role (and, with `--vhosts`, its vhost
limit). With `--password-stdin` the password is read from standard input (one line), checked
by Django's password validators and never echoed; without it a new account gets no
password and the command prints a one-time sign-in link instead. The change is recorded in
the audit log.
"""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from flows import access, audit
from flows.login_links import issue_login_link


class Command(BaseCommand):
    help = "Create a dashboard account in a role, or change an account's role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=list(access.ROLES))
        parser.add_argument(
            "--vhosts",
            help="comma-separated shell-style patterns (demo-*,staging) of the only vhosts "
            "the account may see; '' removes the account's own limit",
        )
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"].strip()
        role: str = options["role"]
        if not username:
            raise CommandError("Give the account a name.")
        patterns = None
        if options["vhosts"] is not None:
            patterns = access.parse_patterns(options["vhosts"])
        password = self._read_password() if options["password_stdin"] else None

        user_model = get_user_model()
        with transaction.atomic():
            user, created = user_model.objects.get_or_create(username=username)
            if password is not None:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("Password refused: " + " ".join(exc.messages)) from exc
                user.set_password(password)
                user.save(update_fields=["password"])
            elif created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            previous = None if created else access.role_of(user)
            access.set_role(user, role)
            if patterns is not None:
                access.set_vhost_limit(user, patterns)
        details: dict[str, Any] = {"role": role, "previous_role": previous, "created": created}
        if patterns is not None:
            details["vhosts"] = patterns
        audit.record("manage.py adduser", audit.ROLE_CHANGE, target=username, details=details)

        limit = f", vhosts {', '.join(patterns)}" if patterns else ""
        self.stdout.write(f"{'Created' if created else 'Updated'} {username!r}: role {role}{limit}")
        if password is None and not user.has_usable_password():
            token = issue_login_link(user)
            base = options["base_url"].rstrip("/")
            self.stdout.write(f"Sign in once with: {base}/accounts/link/{token}/")

    def _read_password(self) -> str:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise CommandError("--password-stdin: no password on standard input.")
        return password
