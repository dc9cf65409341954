from django.urls import URLPattern, URLResolver, include, path, re_path

from flows.views import (
    audience,
    audit,
    dead_letters,
    demo,
    json_api,
    live,
    openapi,
    overview,
    publish,
    recordings,
)
from flows.views import topology as topology_views
from flows.views.publish_api import api_management_publish, api_publish, api_run, api_run_cancel

template_patterns = [
    path("save", publish.template_save, name="publish-template-save"),
    path("<int:template_id>/publish", publish.template_publish, name="publish-template-publish"),
    path("<int:template_id>/delete", publish.template_delete, name="publish-template-delete"),
]

publish_patterns: list[URLPattern | URLResolver] = [
    path("", publish.publish_page, name="publish"),
    path("send", publish.publish_submit, name="publish-submit"),
    path("prefill", publish.publish_prefill, name="publish-prefill"),
    path("runs/<str:run_id>", publish.run_progress, name="publish-run"),
    path("runs/<str:run_id>/cancel", publish.run_cancel, name="publish-run-cancel"),
    path("templates/", include(template_patterns)),
]

demo_patterns = [
    path("", demo.demo_list, name="demo"),
    path("<slug:name>/", demo.demo_page, name="demo-scenario"),
    path("<slug:name>/load", demo.demo_load, name="demo-load"),
    path("<slug:name>/unload", demo.demo_unload, name="demo-unload"),
    path("<slug:name>/controls", demo.demo_controls, name="demo-controls"),
    path("<slug:name>/run", demo.demo_run, name="demo-run"),
    path("<slug:name>/publisher", demo.demo_publisher, name="demo-publisher"),
    path("<slug:name>/step", demo.demo_step, name="demo-step"),
    path("<slug:name>/publish", demo.demo_compose, name="demo-compose"),
    path("<slug:name>/workers", demo.demo_workers, name="demo-workers"),
    path("<slug:name>/audience", demo.demo_audience, name="demo-audience"),
    path(
        "<slug:name>/audience/<int:link_id>/revoke",
        demo.demo_audience_revoke,
        name="demo-audience-revoke",
    ),
]

# The audience's read-only view: no sign-in, the token is the credential (`flows.audience`).
watch_patterns = [
    path("", audience.watch_page, name="watch"),
    path("topology", audience.watch_topology, name="watch-topology"),
]

dead_letter_patterns = [
    path("", dead_letters.dead_letters_page, name="dead-letters"),
    path("move", dead_letters.dead_letters_move, name="dead-letters-move"),
    path(
        "moves/<str:job_id>",
        dead_letters.move_progress,
        name="dead-letters-move-progress",
    ),
    path(
        "moves/<str:job_id>/cancel",
        dead_letters.move_cancel,
        name="dead-letters-move-cancel",
    ),
]

# Every endpoint here is a `@json_api` view (flows/views/json_api.py): one convention.
api_patterns = [
    path("openapi.json", openapi.api_openapi, name="api-openapi"),
    path("publish", api_publish, name="api-publish"),
    path("publish/runs/<str:run_id>", api_run, name="api-publish-run"),
    path("publish/runs/<str:run_id>/cancel", api_run_cancel, name="api-publish-run-cancel"),
    # RabbitMQ's management API publishes here; `names` is "<vhost>/<exchange>". `[\s\S]`, not
    # `.`: a name may hold a newline (%0A), which must still reach the view, not an HTML 404.
    re_path(
        r"^exchanges/(?P<names>[\s\S]+)/publish$",
        api_management_publish,
        name="api-mgmt-publish",
    ),
    path("topology", topology_views.api_topology, name="api-topology"),
    path("route", topology_views.api_route, name="api-route"),
    path("audit", audit.api_audit, name="api-audit"),
    path("messages", recordings.api_messages, name="api-messages"),
    # Last: any other /api/ path is a JSON 404, never Django's HTML page.
    re_path(r"^(?P<path>[\s\S]*)$", json_api.api_not_found, name="api-not-found"),
]

urlpatterns = [
    path("", overview.overview_page, name="overview"),
    path("overview/status", overview.overview_status, name="overview-status"),
    path("publish/", include(publish_patterns)),
    path("topology/", topology_views.topology_page, name="topology"),
    path("topology/details", topology_views.topology_details, name="topology-details"),
    path("topology/route", topology_views.topology_route, name="topology-route"),
    path("live/", live.live_page, name="live"),
    path("live/details", live.live_details, name="live-details"),
    path("live/publish-again", live.live_publish_again, name="live-publish-again"),
    path("live/consumption", live.live_consumption, name="live-consumption"),
    path("demo/", include(demo_patterns)),
    path("audit/", audit.audit_page, name="audit"),
    path("recordings/", recordings.recordings_page, name="recordings"),
    path("recordings/start", recordings.recording_start, name="recording-start"),
    path("recordings/<int:recording_id>/stop", recordings.recording_stop, name="recording-stop"),
    path(
        "recordings/<int:recording_id>/export",
        recordings.recording_export,
        name="recording-export",
    ),
    path("messages/", recordings.messages_page, name="messages"),
    path("dead-letters/", include(dead_letter_patterns)),
    path("api/", include(api_patterns)),
    path("watch/<str:token>/", include(watch_patterns)),
]
