"""Publishing test messages: field checks, the long-lived publisher, repeats, templates."""
